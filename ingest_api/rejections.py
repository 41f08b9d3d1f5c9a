"""Rejected requests, counted per key and reason in memory and published once a second, so
users can see what was dropped (GET /api/v1/query/rejections) at no cost per request."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import get_args

from runtime.metrics import EVENTS_REJECTED, REQUESTS_REJECTED, count
from schemas.records import RejectionCount, Rejections, RejectReason, record_encoder

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0


class RejectionCounter:
    def __init__(self, origin: str) -> None:
        self.origin = origin
        # Every reason on /metrics from the start, at 0: a counter that appears only once
        # something is refused cannot be graphed or alerted on (rate() of nothing).
        for reason in get_args(RejectReason):
            REQUESTS_REJECTED.labels(reason)
            EVENTS_REJECTED.labels(reason)
        self._counts: dict[tuple[str, RejectReason], list[int]] = {}
        self._since = time.time()
        self._seq = 0

    def count(self, key_id: str, reason: RejectReason, events: int = 0) -> None:
        counts = self._counts.get((key_id, reason))
        if counts is None:
            counts = self._counts[(key_id, reason)] = [0, 0]
        counts[0] += 1
        counts[1] += events
        count(REQUESTS_REJECTED, (reason,))
        if events:
            count(EVENTS_REJECTED, (reason,), events)

    def drain(self, now: float) -> Rejections | None:
        """The counts since the last drain as one record (None if nothing was rejected)."""
        if not self._counts:
            self._since = now
            return None
        self._seq += 1
        record = Rejections(
            id=f"{self.origin}-{self._seq}-{secrets.token_hex(4)}",
            origin=self.origin,
            start=self._since,
            end=now,
            counts=[RejectionCount(k, r, c[0], c[1]) for (k, r), c in self._counts.items()],
        )
        self._counts = {}
        self._since = now
        return record

    def restore(self, record: Rejections) -> None:
        """Put back counts whose publication failed, to go out with the next ones."""
        for counted in record.counts:
            counts = self._counts.setdefault((counted.key_id, counted.reason), [0, 0])
            counts[0] += counted.requests
            counts[1] += counted.events
        self._since = min(self._since, record.start)


async def publish_rejections(
    counter: RejectionCounter, append: Callable[[bytes], Awaitable[None]]
) -> None:
    while True:
        await asyncio.sleep(FLUSH_EVERY_S)
        record = counter.drain(time.time())
        if record is None:
            continue
        try:
            await append(record_encoder.encode(record))
        except Exception as exc:
            log.warning("could not publish rejection counts (%s); will retry", exc)
            counter.restore(record)
