"""Which routing rule decides for an event: pure, no I/O (rules in, decision out).

Rules are tried by (priority, created_at); the first whose type, key and name glob match wins.
When none matches, the defaults apply (docs/routing.md): an error alerts at once on the first
occurrence of its name (per key) within an hour, and later occurrences go to the daily digest;
an event goes to the daily digest. Defaults send to every channel.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from functools import lru_cache

import msgspec

from schemas.routing import DEFAULT_QUIET_WINDOW_S, DigestSchedule, RouteDefined, RouteMode


class Decision(msgspec.Struct, frozen=True):
    mode: RouteMode
    channels: tuple[str, ...]  # empty for the defaults: every channel
    quiet_window_s: int = DEFAULT_QUIET_WINDOW_S
    digest: DigestSchedule | None = None
    route_id: str | None = None  # None: a default

    @property
    def every_channel(self) -> bool:
        return self.route_id is None


def default_decision(event_type: str, default_digest: DigestSchedule) -> Decision:
    if event_type == "error":
        return Decision("immediate", (), DEFAULT_QUIET_WINDOW_S, default_digest)
    return Decision("digest", (), DEFAULT_QUIET_WINDOW_S, default_digest)


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def matches(rule: RouteDefined, event_type: str, name: str, key_id: str) -> bool:
    if rule.match_type != "any" and rule.match_type != event_type:
        return False
    if rule.key_id is not None and rule.key_id != key_id:
        return False
    return _glob(rule.name).match(name) is not None


def ordered(rules: Iterable[RouteDefined]) -> list[RouteDefined]:
    """Rules in the order they are tried."""
    return sorted(rules, key=lambda r: (r.priority, r.created_at, r.id))


def decide(
    rules: list[RouteDefined],
    event_type: str,
    name: str,
    key_id: str,
    default_digest: DigestSchedule,
) -> Decision:
    """The decision for one (type, name, key); `rules` as returned by `ordered`."""
    for rule in rules:
        if matches(rule, event_type, name, key_id):
            return Decision(
                rule.mode, tuple(rule.channels), rule.quiet_window_s, rule.digest, rule.id
            )
    return default_decision(event_type, default_digest)


def opens_window(opened_at: float | None, at: float, quiet_window_s: int) -> bool:
    """Whether an occurrence at `at` alerts: the first of its name, or the first after the
    window the last alert opened has passed. Later occurrences go to the digest."""
    return opened_at is None or at >= opened_at + quiet_window_s


def too_late_to_alert(at: float, received_at: float, quiet_window_s: int) -> bool:
    """An occurrence older than its quiet window when it arrived is history, not news: it is
    stored, rolled up and in the digest, but alerts nobody (a backfill, a client that queued
    errors for hours)."""
    return at < received_at - quiet_window_s
