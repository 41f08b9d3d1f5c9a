"""Batches of a Faust stream that cost nothing while the stream is quiet.

Faust's `Stream.take_events(max_, within)` wakes every `within` whether or not an event came:
the worker's four batching agents (20-50 ms windows, kept short for alert latency) woke 140
times a second on an idle service, 2.6 % of a core (bench/idle.py). `take_batches` waits for
the first event of a batch as long as it takes, then gathers more for up to `within` or until
`max_` are in hand. Events are acknowledged only after the caller has handled their batch,
so a crash replays the batch, as with take_events (at least once); with `ack=False` the caller
acknowledges them itself (`stream.ack(event)`), later (processors.heartbeats writes behind).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import faust
from faust.types import EventT


async def take_batches(
    stream: faust.StreamT[bytes], max_: int, within: float, ack: bool = True
) -> AsyncIterator[list[EventT]]:
    manual = stream.noack()
    # A pump task reads the stream into a queue: a `get` that times out can be cancelled
    # safely, whereas cancelling the stream's own iterator could drop the event it holds.
    queue: asyncio.Queue[EventT] = asyncio.Queue(maxsize=max_)

    async def pump() -> None:
        async for event in manual.events():
            await queue.put(event)

    pumping = asyncio.create_task(pump(), name="take_batches pump")
    loop = asyncio.get_running_loop()
    try:
        while (first := await _next(queue, pumping)) is not None:
            batch = [first]
            deadline = loop.time() + within
            while len(batch) < max_:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            yield batch
            if ack:
                for event in batch:
                    await manual.ack(event)
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping


async def _next(queue: asyncio.Queue[EventT], pumping: asyncio.Task[None]) -> EventT | None:
    """The next event, or None once the stream has ended (the worker is stopping); the pump's
    own failure is raised rather than waited on for ever."""
    if not queue.empty():
        return queue.get_nowait()
    getting = asyncio.ensure_future(queue.get())
    try:
        await asyncio.wait([getting, pumping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not getting.done():
            getting.cancel()
    if getting.done() and not getting.cancelled():
        return getting.result()
    pumping.result()  # raises what stopped the pump
    return None
