"""The one time format of every answer and payload: ISO 8601 in UTC, to the millisecond
(2026-07-02T10:00:00.250Z). Records on the log keep epoch seconds; this is their face."""

from __future__ import annotations

import datetime as dt
import functools


# Cached: a canary's times (created, last check-in, next due, deadline) stay put between its
# check-ins, yet every refresh of the statuses formats them again: 4,000 with 1,000 canaries,
# a quarter of the canary list's own work (bench/ui.py). Entries are ~100 bytes.
@functools.lru_cache(maxsize=16384)
def iso_utc(epoch: float) -> str:
    """Machine form, fixed width: 2026-07-02T10:00:00.250Z."""
    return (
        dt.datetime.fromtimestamp(epoch, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def iso_or_none(epoch: float | None) -> str | None:
    return None if epoch is None else iso_utc(epoch)


def epoch_of(iso: str) -> float:
    """The inverse of iso_utc (any ISO 8601 with an offset or Z)."""
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
