"""Rate limiting at the API: decided locally on every request, kept honest by the log.

Each API process holds, per key, the ratelimit agent's latest authoritative bucket (a
RateSnapshot: the level after every admission up to some offset of the key's events
partition) plus its own admissions the snapshot does not cover yet. A request is judged on
that view at once, with no network round trip; a snapshot arriving later replaces the base
and drops the admissions it now covers. Tokens spent concurrently by another API process are
seen one snapshot later (~100-300 ms): the agent's level then shows the debt, and every process
holds back until it is repaid. While several processes admit for one key (or, before the agent
has said anything about a key, as many as are configured), each may spend only its share of
the agent's level (1/sharers), which keeps a cold burst from being spent N times over. A request
that could never fit in a share is judged against the whole level instead (so it is not refused
for ever). Over-admission is bounded by what the other processes spend before this one sees it:
at most about a burst plus the refill over the snapshot delay and REBASE_EVERY_S (see the
property tests in tests/unit/test_limiter.py and the measured figures in docs/rate-limits.md).
A new snapshot is folded in lazily (see REBASE_EVERY_S): until then the process goes on with
its own exact local view.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from domain.token_bucket import Bucket, Decision, Limit, debit, decide, full, refill
from schemas.records import RateSnapshot, rate_snapshot_decoder

# Rebuilding the view replays this process's uncovered admissions; snapshots come ~20 times
# a second under load, so the rebuild waits for the next request at least this long after the
# last one (measured: replaying on every snapshot cost ~4 % of the API's CPU at 1,800 req/s).
REBASE_EVERY_S = 0.25
# Admissions the agent has not covered after this long (agent down or far behind) are
# dropped from the view: the process then runs on what it has seen, not on stale debt.
UNCOVERED_HORIZON_S = 60.0


@dataclass
class Admission:
    n: int
    at: float
    offset: int | None = None  # known once the log acknowledged the batch


@dataclass
class KeyBucket:
    base: Bucket  # the agent's latest level for this key (or full, before any snapshot)
    view: Bucket  # `view_base` with `own` applied: what this process decides on
    view_base: Bucket  # the base `view` was built on (shares are taken of this one)
    base_offset: int = -1
    sharers: int = 1
    own: deque[Admission] = field(default_factory=deque)  # admissions `base` may not cover
    stale: bool = False  # base or own changed since `view` was built
    rebuilt_at: float = float("-inf")


class RateLimiter:
    def __init__(self, api_processes: int = 1) -> None:
        # Before the agent says who shares a key, assume every configured API process does:
        # a cold, full bucket is then not spent once per process.
        self._default_sharers = max(1, api_processes)
        self._buckets: dict[str, KeyBucket] = {}

    def _bucket(self, key_id: str, limit: Limit, now: float) -> KeyBucket:
        bucket = self._buckets.get(key_id)
        if bucket is None:
            start = full(limit, now)
            bucket = self._buckets[key_id] = KeyBucket(
                start, start, start, sharers=self._default_sharers
            )
        return bucket

    def _rebuild(self, bucket: KeyBucket, limit: Limit, now: float) -> None:
        own = bucket.own
        horizon = now - UNCOVERED_HORIZON_S
        while own and (
            (own[0].offset is not None and own[0].offset <= bucket.base_offset)
            or own[0].at < horizon
        ):
            own.popleft()
        view = bucket.base
        for admission in own:
            if admission.offset is None or admission.offset > bucket.base_offset:
                view = debit(view, admission.n, limit, admission.at)
        bucket.view, bucket.view_base = view, bucket.base
        bucket.stale, bucket.rebuilt_at = False, now

    def take(
        self, key_id: str, n: int, limit: Limit, now: float
    ) -> tuple[Decision, Admission | None]:
        """Admit n events for the key now, or refuse without taking anything."""
        bucket = self._bucket(key_id, limit, now)
        if bucket.stale and now - bucket.rebuilt_at >= REBASE_EVERY_S:
            self._rebuild(bucket, limit, now)
        view = bucket.view
        available = None
        if bucket.sharers > 1 and n <= limit.burst / bucket.sharers:
            # This process's share: what it sees, less what the others may spend of the base.
            # Of the base the view was built on: a newer base not yet folded in would credit
            # this process with the others' spending while its view does not show it.
            base_level = refill(bucket.view_base, limit, now).level
            keep_back = base_level * (1 - 1 / bucket.sharers)
            available = refill(view, limit, now).level - keep_back
        decision = decide(view, n, limit, now, available)
        if not decision.admitted:
            return decision, None
        admission = Admission(n, now)
        bucket.own.append(admission)
        bucket.view = decision.bucket
        return decision, admission

    def acknowledged(self, admission: Admission, offset: int) -> None:
        admission.offset = offset

    def refund(self, key_id: str, admission: Admission) -> None:
        """The append failed: nothing was stored, so nothing is charged (at once)."""
        bucket = self._buckets.get(key_id)
        if bucket is not None and admission in bucket.own:
            bucket.own.remove(admission)
            bucket.stale, bucket.rebuilt_at = True, float("-inf")

    def apply_bytes(self, value: bytes) -> None:
        self.apply(rate_snapshot_decoder.decode(value))

    def apply(self, snapshot: RateSnapshot) -> None:
        base = Bucket(snapshot.level, snapshot.at)
        bucket = self._buckets.get(snapshot.key_id)
        if bucket is None:
            self._buckets[snapshot.key_id] = KeyBucket(
                base, base, base, snapshot.offset, max(1, snapshot.sharers)
            )
            return
        if snapshot.offset < bucket.base_offset:
            return  # an older snapshot replayed: keep the newer base
        bucket.base, bucket.base_offset = base, snapshot.offset
        bucket.sharers = max(1, snapshot.sharers)
        bucket.stale = True
