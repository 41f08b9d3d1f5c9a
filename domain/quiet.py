"""Maintenance windows and error silences, as pure functions of explicit times
(schemas.quiet holds the records).

A window covers a canary by id, by tag, or everything. While a window covering a canary is
open, its flips are sent held (no channel: recorded, shown, never notified), and a deadline
that falls in it is pushed to its end: the canary's period restarts there (domain.canary_state
.restart), so a job rightly silent during maintenance gets a whole interval after it.
Overlapping and back-to-back windows chain: the quiet lasts until none is open.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fnmatch import fnmatchcase

from domain.schedule import next_slot
from schemas.canaries import CanaryDefined
from schemas.quiet import SilenceDefined, WindowDefined

FOREVER = math.inf  # the end of an open-ended window
CHAIN_MAX = 64  # windows chained end to end before giving up (a bound, not a real case)


def covers(window: WindowDefined, canary: CanaryDefined) -> bool:
    return (
        window.everything
        or canary.id in window.canaries
        or any(tag in window.tags for tag in canary.tags)
    )


def open_until(window: WindowDefined, at: float) -> float | None:
    """When the occurrence of the window open at `at` closes (FOREVER: open-ended), or None
    if it is not open at `at`."""
    end = FOREVER if window.ends_at is None else window.ends_at
    if at < window.starts_at or at >= end:
        return None
    if window.schedule is None:
        return end
    # The first slot after (at - duration) is the earliest occurrence that may still be open.
    earliest = max(at - window.duration_s, window.starts_at - 1)
    slot = next_slot(window.schedule, window.timezone, earliest)
    while slot is not None and slot < window.starts_at:  # a slot in starts_at's last second
        slot = next_slot(window.schedule, window.timezone, slot)
    if slot is None or slot > at:
        return None
    return min(slot + window.duration_s, end)


def quiet_until(windows: Iterable[WindowDefined], canary: CanaryDefined, at: float) -> float:
    """Until when the canary is quiet from `at`: `at` itself if no window covering it is open
    then, FOREVER under an open-ended one; windows open at each end found are chained."""
    mine = [w for w in windows if covers(w, canary)]
    if not mine:  # the common case, once per canary shown
        return at
    until = at
    for _ in range(CHAIN_MAX):
        ends = [e for e in (open_until(w, until) for w in mine) if e is not None]
        if not ends:
            return until
        until = max(ends)
        if until == FOREVER:
            return FOREVER
    return until


def window_now(window: WindowDefined, now: float) -> str:
    """How a listing shows a window: open, scheduled (it will open) or ended."""
    if open_until(window, now) is not None:
        return "open"
    if window.ends_at is not None and window.ends_at <= now:
        return "ended"
    return "scheduled"


def next_opening(window: WindowDefined, now: float) -> float | None:
    """When the window next opens after `now` (None: never again, or open now)."""
    if window_now(window, now) != "scheduled":
        return None
    if window.schedule is None:
        return window.starts_at
    slot = next_slot(window.schedule, window.timezone, max(now, window.starts_at - 1))
    if slot is None or (window.ends_at is not None and slot >= window.ends_at):
        return None
    return slot


def silence_of(
    silences: Iterable[SilenceDefined], event_type: str, name: str, key_id: str, at: float
) -> SilenceDefined | None:
    """The first silence (by id) in force at `at` that matches an error alert, if any."""
    for silence in sorted(silences, key=lambda s: s.id):
        if not silence.starts_at <= at < silence.ends_at:
            continue
        if silence.match_type not in ("any", event_type):
            continue
        if silence.key_id is not None and silence.key_id != key_id:
            continue
        if fnmatchcase(name, silence.name):
            return silence
    return None
