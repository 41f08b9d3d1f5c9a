"""Cron schedules of canaries, as pure functions: the next slot after a moment, and the check
and plain-English text of an expression.

Parsing and stepping are cronsim's (the library Healthchecks and Sentry Crons use): Debian cron
semantics, 5 fields or 6 with seconds, `L`, `LW`, `5L`, `MON#2`. Slots are computed in the
canary's IANA timezone, so DST is cron's: a 02:30 job on the spring-forward day runs at 03:00
(the skipped time's first valid moment), and on the fall-back day it runs once, at the first
02:30. Times are epoch seconds in and out.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from cronsim import CronSim, CronSimError

from schemas.errors import BadSchedule

DEFAULT_TIMEZONE = "UTC"


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    # Only the IANA names: ZoneInfo itself opens any path below the tz database ("Europe" is
    # a directory there, and "posixrules" a file).
    if name not in _zone_names():
        raise BadSchedule(f"unknown timezone {name!r} (an IANA name such as Europe/Paris)")
    return ZoneInfo(name)


def check_schedule(expression: str, timezone: str | None) -> None:
    """BadSchedule, saying what is wrong, unless the expression has slots in that timezone."""
    tz = zone(timezone or DEFAULT_TIMEZONE)
    try:
        iterator = CronSim(expression, dt.datetime.now(tz))
        next(iterator)
    except (CronSimError, ValueError, OverflowError) as exc:
        raise BadSchedule(f"invalid cron expression {expression!r}: {exc}") from None
    except StopIteration:
        raise BadSchedule(f"the cron expression {expression!r} never matches") from None


@lru_cache(maxsize=4096)
def next_slot(expression: str, timezone: str | None, after: float) -> float | None:
    """The first slot strictly after `after` (None if the schedule has no more slots). A
    check-in during a slot's second counts for that slot, not the next."""
    try:
        start = dt.datetime.fromtimestamp(after, zone(timezone or DEFAULT_TIMEZONE))
        slots = CronSim(expression, start)
        # From the second 02:30 of a fall-back night, cronsim yields the first 02:30 (before
        # `after`): cron runs a job once that night, so skip to the slot after.
        for _ in range(8):
            slot = next(slots).timestamp()
            if slot > after:
                return slot
    except (StopIteration, CronSimError, BadSchedule, ValueError, OverflowError):
        pass  # checked when defined: never here, but a worker must not stop on it
    return None


def explain(expression: str) -> str:
    """cronsim's English for the expression ("At 03:00 every day"); the expression itself if
    cronsim cannot say it."""
    try:
        return CronSim(expression, dt.datetime.now(dt.UTC)).explain()
    except Exception:  # explain() is best effort in cronsim; the schedule itself was checked
        return expression
