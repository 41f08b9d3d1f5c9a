"""The token bucket, one pure implementation for the API (which enforces it) and the
ratelimit agent (which keeps the authoritative level from the log).

A bucket holds up to `burst` tokens and refills at `rate_per_s`; a request of n events needs
n tokens. Levels may go below zero in the agent's view: the log records what API processes
admitted, and when several of them spent the same tokens concurrently the debt is real and
must be paid back before anyone admits again. Times are unix seconds, passed in explicitly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from schemas.limits import DEFAULT_BURST, DEFAULT_RATE_PER_MINUTE


class Limit(NamedTuple):
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
    burst: int = DEFAULT_BURST

    @property
    def rate_per_s(self) -> float:
        return self.rate_per_minute / 60.0


class Bucket(NamedTuple):
    level: float  # tokens at `at`; may be negative (debt)
    at: float


class Decision(NamedTuple):
    admitted: bool
    bucket: Bucket  # the state after the decision (unchanged when refused)
    remaining: int  # whole tokens left: RateLimit-Remaining
    reset_s: int  # seconds until the bucket is full again: RateLimit-Reset
    retry_after_s: int | None  # on refusal: seconds until n tokens exist; None if never


def full(limit: Limit, now: float) -> Bucket:
    return Bucket(float(limit.burst), now)


def refill(bucket: Bucket, limit: Limit, now: float) -> Bucket:
    """The bucket at `now`; time running backwards (clock skew between processes) adds nothing."""
    elapsed = max(0.0, now - bucket.at)
    return Bucket(
        min(float(limit.burst), bucket.level + elapsed * limit.rate_per_s), max(now, bucket.at)
    )


def seconds_until(level: float, wanted: float, limit: Limit) -> int:
    """Whole seconds until a bucket at `level` holds `wanted` tokens (0 if it does already)."""
    missing = wanted - level
    if missing <= 0:
        return 0
    return math.ceil(missing / limit.rate_per_s)


def decide(
    bucket: Bucket, n: int, limit: Limit, now: float, available: float | None = None
) -> Decision:
    """Admit n events if the bucket (refilled to now) holds n tokens, taking them; otherwise
    refuse and take nothing. `available` caps what may be spent (a process's share of the
    level when several API processes spend one key's tokens); it defaults to the level."""
    current = refill(bucket, limit, now)
    spendable = current.level if available is None else min(available, current.level)
    if n <= spendable + _ROUNDING:
        after = Bucket(current.level - n, current.at)
        return Decision(True, after, _remaining(after), _reset(after, limit), None)
    retry = None if n > limit.burst else max(1, seconds_until(current.level, n, limit))
    return Decision(False, current, _remaining(current), _reset(current, limit), retry)


def debit(bucket: Bucket, n: int, limit: Limit, now: float) -> Bucket:
    """Take n tokens whatever the level: the agent replaying admissions from the log."""
    current = refill(bucket, limit, now)
    return Bucket(current.level - n, current.at)


# Tokens are whole events; refills are floats. Without this, a bucket refilled for exactly
# the Retry-After it announced can hold n - 1e-14 tokens and refuse the retry it invited.
_ROUNDING = 1e-9


def _remaining(bucket: Bucket) -> int:
    return max(0, math.floor(bucket.level + 1e-9))


def _reset(bucket: Bucket, limit: Limit) -> int:
    return seconds_until(bucket.level, limit.burst, limit)
