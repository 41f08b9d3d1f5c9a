"""uvicorn's Server, quiet while idle.

uvicorn's main loop wakes every 0.1 s to refresh the Date header and to see whether it should
exit: ten wake-ups a second in every API process and in the store's query socket, on a
service that should cost nothing while nothing happens (docs/benchmarks.md, "Idle cost"). This one ticks
once a second (the Date header has one-second resolution anyway) and wakes at once when told
to exit.
"""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn

TICK_S = 1.0


class QuietServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        self._exit: asyncio.Event | None = None
        self._exit_loop: asyncio.AbstractEventLoop | None = None
        self._should_exit = False
        super().__init__(config)

    @property  # type: ignore[override]
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        if value and self._exit is not None and self._exit_loop is not None:
            # Set from a signal handler or another task: wake the main loop now.
            self._exit_loop.call_soon_threadsafe(self._exit.set)

    async def main_loop(self) -> None:
        self._exit_loop, self._exit = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        # on_tick refreshes the Date header when counter % 10 == 0, as uvicorn counts tenths.
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864_000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await self._exit.wait()
