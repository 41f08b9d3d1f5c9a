"""Reading a request body without ever holding more than the cap in memory, nor waiting for
it forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from schemas.errors import BodyTooLarge, BodyTooSlow

# A client that sends its headers and then trickles (or stalls) its body would otherwise hold
# a connection and a task for as long as it likes (slowloris). 10 s is ample for 512 KB on any
# working link; bigger uploads do not exist on these routes.
BODY_TIMEOUT_S = 10.0


async def read_capped(
    declared_length: str | None,
    chunks: AsyncIterator[bytes],
    cap: int,
    timeout_s: float = BODY_TIMEOUT_S,
) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is known to exceed cap bytes, or
    BodyTooSlow when it has not all arrived within `timeout_s` (up to SWEEP_S more).

    A declared Content-Length over the cap is refused before a byte is read; a chunked (or
    lying) body is cut off at the first chunk that crosses the cap.
    """
    declared = declared_length or ""
    if declared.isascii() and declared.isdigit() and int(declared) > cap:  # "²".isdigit() too
        raise BodyTooLarge
    received = []
    size = 0
    task = asyncio.current_task()
    assert task is not None
    _overdue.watch(task, timeout_s)
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > cap:
                raise BodyTooLarge
            received.append(chunk)
    except asyncio.CancelledError:
        if _overdue.fired(task):
            raise BodyTooSlow from None
        raise
    finally:
        _overdue.unwatch(task)
    return b"".join(received)


SWEEP_S = 0.25


class _Overdue:
    """asyncio.timeout for the body reads of every request at once: a request adds its task
    to a dict and takes it out, and one sweeper task, running only while some read is
    watched, cancels the reads past their deadline every SWEEP_S. (asyncio.timeout per
    request, a timer scheduled and cancelled each time, was ~4 % of the API's CPU on ingest.)
    A watched task is always suspended inside read_capped's loop when the sweeper runs
    (nothing between the watch and the unwatch awaits anything else), so the cancellation
    lands there and nowhere else."""

    def __init__(self) -> None:
        self._due: dict[asyncio.Task[object], float] = {}
        self._fired: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def watch(self, task: asyncio.Task[object], timeout_s: float) -> None:
        loop = task.get_loop()
        self._due[task] = loop.time() + timeout_s
        if self._sweeper is None or self._sweeper.done() or self._sweeper.get_loop() is not loop:
            self._sweeper = loop.create_task(self._sweep())

    def unwatch(self, task: asyncio.Task[object]) -> None:
        self._due.pop(task, None)

    def fired(self, task: asyncio.Task[object]) -> bool:
        """Whether the sweeper cancelled `task` (and not someone else); takes that back."""
        if task not in self._fired:
            return False
        self._fired.discard(task)
        task.uncancel()
        return True

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while self._due:
            await asyncio.sleep(SWEEP_S)
            now = loop.time()
            for task, due in list(self._due.items()):
                if task.get_loop() is not loop:
                    continue  # a read of another event loop (tests): its own sweeper's
                if due <= now:
                    del self._due[task]
                    if task.cancel():
                        self._fired.add(task)


_overdue = _Overdue()


async def read_prefix(
    declared_length: str | None,
    chunks: AsyncIterator[bytes],
    keep: int,
    cap: int,
    timeout_s: float = BODY_TIMEOUT_S,
) -> tuple[bytes, bool]:
    """The body's first `keep` bytes and whether that is all of it; the rest is read and
    dropped (a job piping its output sends more than a message holds, and must still be
    answered). BodyTooLarge past `cap` bytes (a declared length too, before any is read),
    BodyTooSlow as read_capped."""
    declared = declared_length or ""
    if declared.isascii() and declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge
    received = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in chunks:
                if size < keep:
                    received.append(chunk[: keep - size])
                size += len(chunk)
                if size > cap:
                    raise BodyTooLarge
    except TimeoutError:
        raise BodyTooSlow from None
    return b"".join(received), size <= keep
