"""Digests, pure: when periods end (schedules in a timezone, across DST), which digests a set
of routing rules asks for, and what one says given the rollup rows of its period
(queries.digest). No I/O, no clock: processors.agents.digest_agent runs these on a timer.

A digest period ends at `at` local time (daily) or at minute `at[3:]` of every hour (hourly);
it starts at the end before. Across a DST change a daily period is 23 or 25 hours long; a
local time that does not exist that day (02:30 in a spring-forward gap) is read as the
instant `zoneinfo` gives it (fold 0), and a repeated one (fall back) as its first occurrence.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from typing import cast

import msgspec

from domain.routing_rules import decide
from schemas.alerts import Digest, DigestError, DigestLine
from schemas.routing import DigestSchedule, RouteDefined
from schemas.wire import EventType

DEFAULT_DIGEST_KEY = "default"
# What one digest lists at most: enough for a reader, and far below a message's 1 MB.
MAX_LINES = 500
MAX_ERRORS = 100


class DigestPlan(msgspec.Struct, frozen=True):
    """One digest to send at each period end: the default one or a route's."""

    key: str  # "default" or the route id
    route_id: str | None
    schedule: DigestSchedule
    channels: tuple[str, ...]  # empty: every channel


def _zone(schedule: DigestSchedule) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(schedule.timezone)


def _at(schedule: DigestSchedule) -> tuple[int, int]:
    hour, minute = schedule.at.split(":")
    return int(hour), int(minute)


def period_end_at_or_before(schedule: DigestSchedule, now: float) -> float:
    """The latest period end that is not after `now` (epoch seconds)."""
    zone, (hour, minute) = _zone(schedule), _at(schedule)
    local = dt.datetime.fromtimestamp(now, zone)
    if schedule.period == "hourly":
        end = local.replace(minute=minute, second=0, microsecond=0)
        if end.timestamp() > now:
            end = dt.datetime.fromtimestamp(end.timestamp() - 3_600, zone)
        return end.timestamp()
    day = local.date()
    while True:
        end = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)
        if end.timestamp() <= now:
            return end.timestamp()
        day -= dt.timedelta(days=1)


def previous_end(schedule: DigestSchedule, end: float) -> float:
    """The period end before `end` (itself a period end): where the period ending at `end`
    starts. A daily period follows the calendar of its timezone (23 or 25 h across DST)."""
    if schedule.period == "hourly":
        return end - 3_600
    zone, (hour, minute) = _zone(schedule), _at(schedule)
    day = dt.datetime.fromtimestamp(end, zone).date() - dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone).timestamp()


def plans(rules: Iterable[RouteDefined], default: DigestSchedule) -> list[DigestPlan]:
    """The default digest, and one per rule that sends to a digest."""
    found = [DigestPlan(DEFAULT_DIGEST_KEY, None, default, ())]
    for rule in rules:
        if rule.mode != "silent" and rule.digest is not None:
            found.append(DigestPlan(rule.id, rule.id, rule.digest, tuple(rule.channels)))
    return found


def belongs(
    plan: DigestPlan,
    rules: list[RouteDefined],
    type_: str,
    name: str,
    key_id: str,
    default: DigestSchedule,
) -> bool:
    """Whether the rules send (type, name, key)'s events to this plan's digest."""
    decision = decide(rules, type_, name, key_id, default)
    return (
        decision.mode != "silent"
        and decision.digest is not None
        and decision.route_id == plan.route_id
    )


def build(
    plan: DigestPlan,
    start: float,
    end: float,
    rows: list[list],
    rules: list[RouteDefined],
    default: DigestSchedule,
) -> Digest | None:
    """The digest of [start, end) from queries.digest rows
    [type, name, key_id, count, previous, first_seen, last_at, last_message]; None when
    nothing of the plan happened in either period (no empty digests)."""
    lines: dict[tuple[str, str], list] = {}  # (type, name) -> [count, previous, first_seen]
    errors: dict[str, list] = {}  # name -> [count, last_at, last_message]
    for type_, name, key_id, count, previous, first_seen, last_at, last_message in rows:
        if not belongs(plan, rules, type_, name, key_id, default):
            continue
        line = lines.setdefault((type_, name), [0, 0, first_seen])
        line[0] += count
        line[1] += previous
        line[2] = min(line[2], first_seen)
        if type_ == "error" and count > 0:
            error = errors.setdefault(name, [0, 0.0, ""])
            error[0] += count
            error[1], error[2] = max((error[1], error[2]), (last_at, last_message))
    if not lines:
        return None
    ordered = sorted(
        lines.items(), key=lambda item: (-item[1][0], -item[1][1], item[0][1], item[0][0])
    )
    return Digest(
        id=f"digest:{plan.key}:{int(end)}",
        route_id=plan.route_id,
        channels=list(plan.channels),
        period=plan.schedule.period,
        timezone=plan.schedule.timezone,
        start=start,
        end=end,
        lines=[
            DigestLine(cast(EventType, type_), name, count, previous, first_seen >= start)
            for (type_, name), (count, previous, first_seen) in ordered[:MAX_LINES]
        ],
        errors=[
            DigestError(name, count, last_at, last_message)
            for name, (count, last_at, last_message) in sorted(
                errors.items(), key=lambda item: (-item[1][0], item[0])
            )[:MAX_ERRORS]
        ],
    )
