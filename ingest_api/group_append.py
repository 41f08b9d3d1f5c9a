"""Group commit: items bound for one partition of the log ride together in one record.

While an append to a partition is in flight, and for `spacing_s` after it began, the items
that arrive for it wait and go out together in the next record. An idle service appends each
item at once (a group of one, no added wait); a busy one makes one record and one broker round
trip per group instead of per item, which is what lets check-ins reach thousands per second:
the per-record costs (the producer, the broker, every consumer's decode and Faust's per-event
work) dominate a check-in's cost, its own bytes do not. The spacing bounds the records per
second a partition gets from one process, which matters on the embedded broker: its fetch cost
grows with the number of records a partition holds (see docs/benchmarks.md).

Every caller waits for its group's acknowledgement and shares its fate: all in a group are
acknowledged, or all get the append's error.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from schemas.errors import AppendCancelled

T = TypeVar("T")

Append = Callable[[int, list[T]], Awaitable[object]]


class _Group(Generic[T]):
    """Items and, for each, the future its caller awaits: a caller that goes away cancels
    its own future only (cheaper than asyncio.shield around one shared future)."""

    __slots__ = ("items", "waiters")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.waiters: list[asyncio.Future[None]] = []

    def succeeded(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)

    def failed(self, exc: BaseException) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(exc)
                # Its caller may go before it looks: mark the outcome as seen anyway.
                waiter.add_done_callback(_seen)


def _seen(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class GroupAppend(Generic[T]):
    def __init__(self, append: Append[T], max_items: int, spacing_s: float) -> None:
        """`append(partition, items)` writes one record and returns once the log acknowledged
        it; `max_items` bounds a record (a full group starts the next one, unspaced)."""
        self._append = append
        self._max_items = max_items
        self._spacing_s = spacing_s
        self._queued: dict[int, deque[_Group[T]]] = {}
        self._draining: dict[int, asyncio.Task[None]] = {}

    async def add(self, partition: int, item: T) -> None:
        """Return once `item` is on the log; raise what its group's append raised."""
        queued = self._queued.get(partition)
        if queued is None:
            queued = self._queued[partition] = deque()
        if not queued or len(queued[-1].items) >= self._max_items:
            queued.append(_Group())
        group = queued[-1]
        group.items.append(item)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        group.waiters.append(waiter)
        if partition not in self._draining:
            self._draining[partition] = loop.create_task(self._drain(partition, queued))
        await waiter

    async def _drain(self, partition: int, queued: deque[_Group[T]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            while queued:
                began = loop.time()
                # Taken off the queue first: what arrives meanwhile starts the next group.
                group = queued.popleft()
                try:
                    await self._append(partition, group.items)
                except Exception as exc:
                    group.failed(exc)
                except BaseException:  # cancelled: the service is stopping
                    group.failed(AppendCancelled("the service is stopping"))
                    raise
                else:
                    group.succeeded()
                # Still the drainer while spacing: what arrives meanwhile waits for the next.
                wait_s = began + self._spacing_s - loop.time()
                if wait_s > 0 and not (queued and len(queued[0].items) >= self._max_items):
                    await asyncio.sleep(wait_s)
        finally:
            del self._draining[partition]
            while queued:  # only when cancelled: nobody will append these
                queued.popleft().failed(AppendCancelled("the service is stopping"))

    async def close(self) -> None:
        """Stop appending; whoever still waits gets AppendCancelled."""
        tasks = list(self._draining.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for queued in self._queued.values():  # a drainer cancelled before it began
            while queued:
                queued.popleft().failed(AppendCancelled("the service is stopping"))
        self._draining.clear()
