"""The bulk lane's budget (ingest_api.bulk): per key, a token bucket of its own, larger than
the normal lane's and separate from it, so a backfill neither starves live traffic of its
rate limit nor is throttled to it. Each API process keeps its share (the budget divided by
the number of processes): simple, and exact enough for a budget counted in millions.
"""

from __future__ import annotations

from domain.token_bucket import Bucket, Limit, decide, full, refill


class BulkBudget:
    """Per key, this process's share of the bulk token bucket."""

    def __init__(self, rate_per_hour: int, burst: int, processes: int) -> None:
        share = max(1, processes)
        self.limit = Limit(max(1, rate_per_hour // 60 // share), max(1, burst // share))
        self._buckets: dict[str, Bucket] = {}

    @property
    def max_request(self) -> int:
        """The most events one request can ever be admitted with: this process's burst."""
        return self.limit.burst

    def take(self, key_id: str, n: int, now: float) -> int | None:
        """None when n events are admitted (and charged), else seconds to wait. A request over
        `max_request` never passes: the caller refuses it as such before asking."""
        bucket = self._buckets.get(key_id) or full(self.limit, now)
        decision = decide(bucket, n, self.limit, now)
        if decision.admitted:
            self._buckets[key_id] = decision.bucket
            return None
        return decision.retry_after_s or 3600

    def give_back(self, key_id: str, n: int, now: float) -> None:
        """Return n tokens taken for events the log then did not take (a 503 half way): the
        client sends them again and should not pay twice."""
        bucket = self._buckets.get(key_id)
        if bucket is not None:
            current = refill(bucket, self.limit, now)
            self._buckets[key_id] = Bucket(min(self.limit.burst, current.level + n), current.at)
