"""The checks a canary's definition passes before it is appended (ingest_api.admin_canaries):
whole and consistent, a unique name and slug, known parents and no cycle of dependencies."""

from __future__ import annotations

from starlette.responses import Response

from domain.holds import dependency_cycle
from domain.schedule import BadSchedule, check_schedule
from ingest_api.responses import error
from ingest_api.services import Services
from schemas.canaries import CanaryDefined, slug_of


def name_taken(services: Services, name: str, own_id: str | None = None) -> Response | None:
    """409 if another canary has this name: alerts, lists and the CLI show canaries by name,
    and two of one name could not be told apart there. (Admin requests read the control topic
    to its end first, so this sees every canary any API process had created by then.)"""
    for other in services.control.canaries.values():
        if other.name == name and other.id != own_id:
            return error(409, f"a canary named {name!r} exists already: {other.id}")
    return None


def definition_problem(canary: CanaryDefined) -> str | None:
    """What makes a definition inconsistent (a 400), checked on create and on every change."""
    if (canary.interval_s > 0) == (canary.schedule is not None):
        return "give either `interval_seconds` or `schedule`, not both"
    if canary.schedule is not None:
        if canary.events is not None:
            return "a canary over `events` counts per `interval_seconds`, not per `schedule`"
        try:
            check_schedule(canary.schedule, canary.timezone)
        except BadSchedule as exc:
            return str(exc)
    elif canary.timezone is not None:
        return "`timezone` goes with a `schedule`"
    if canary.events is not None and (
        canary.start_margin_s is not None
        or canary.failure_rate is not None
        or canary.abnormal is not None
    ):
        return "`start_margin_seconds`, `failure_rate` and `abnormal` need check-ins, not `events`"
    if canary.failure_rate is not None and canary.failure_rate.failures > canary.failure_rate.runs:
        return "`failure_rate.failures` must be at most `failure_rate.runs`"
    return None


def slug_taken(services: Services, canary: CanaryDefined) -> Response | None:
    """409 if the canary's explicit slug is another's (names differ, so derived slugs rarely
    meet; when they do, a ping by slug answers 409 as Healthchecks does)."""
    if canary.slug is None:
        return None
    for other in services.control.canaries.values():
        if other.id != canary.id and slug_of(other) == canary.slug:
            return error(409, f"the slug {canary.slug!r} is taken by {other.id}")
    return None


def dependency_problem(services: Services, canary: CanaryDefined) -> str | None:
    """Unknown parents, or a cycle the definition would make (domain.holds)."""
    unknown = [p for p in canary.depends_on if p not in services.control.canaries]
    if unknown:
        return f"`depends_on`: unknown canary id(s): {', '.join(unknown)}"
    if canary.id in canary.depends_on:
        return "a canary cannot depend on itself"
    others = [c for c in services.control.canaries.values() if c.id != canary.id]
    cycle = dependency_cycle([*others, canary])
    if cycle:
        return "dependencies would make a cycle: " + " -> ".join(cycle)
    return None
