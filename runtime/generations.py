"""Which log generation each process of `coalmine up` works in, while the launcher rotates the
embedded broker's log (coalmine.rotation).

The launcher writes the state to one file in the data directory (Settings.generation_file)
and sends SIGUSR1 to the API processes and the store, which read it again, move, and say
where they stand in an acknowledgement file of their own (`<role>-<pid>`, next to it). The
worker is not signalled: the launcher replaces it. Without the file (Kafka/Redpanda, which
have retention; or any process not run by `coalmine up`) everything is generation 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from schemas.errors import MoveStalled

log = logging.getLogger(__name__)


class Generations(msgspec.Struct, frozen=True):
    # Where the API appends and what every follower and sink reads.
    current: int = 0
    # The previous generation while it is drained (its records are still read), else None.
    retiring: int | None = None
    # The generation the Faust worker runs on: the retiring one until it has drained it.
    worker: int = 0

    @property
    def live(self) -> list[int]:
        """The generations whose topics are read, oldest first."""
        return [self.current] if self.retiring is None else [self.retiring, self.current]

    @property
    def stamp(self) -> str:
        """What an acknowledgement holds once a process works in this state."""
        return f"{self.current},{'-' if self.retiring is None else self.retiring}"


_decoder = msgspec.json.Decoder(Generations)


def read(path: str) -> Generations:
    """The state in `path`; generation 0 when there is no file (or no path)."""
    if not path:
        return Generations()
    try:
        return _decoder.decode(Path(path).read_bytes())
    except FileNotFoundError:
        return Generations()


def write(path: str, state: Generations) -> None:
    """Replace the state atomically (a reader sees the old file or the new one)."""
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(msgspec.json.encode(state))
    temporary.replace(target)


def ack_path(path: str, role: str, pid: int) -> Path:
    return Path(path).with_name(f"generation-ack-{role}-{pid}")


def acknowledge(path: str, role: str, state: Generations) -> None:
    """This process works in `state` now."""
    if path:
        ack_path(path, role, os.getpid()).write_text(state.stamp)


def acknowledged(path: str, role: str, pid: int) -> str | None:
    try:
        return ack_path(path, role, pid).read_text()
    except FileNotFoundError:
        return None


def clear_acknowledgements(path: str) -> None:
    for stale in Path(path).parent.glob("generation-ack-*"):
        stale.unlink(missing_ok=True)


_draining = False  # the worker: its generation is retiring (see `run_as_worker`)


def draining() -> bool:
    """In the worker: whether the API appends to a newer generation than the one it runs on.
    It then only finishes what its generation holds: it judges no deadline any more, since
    the check-ins that would answer them go to the new generation (its successor judges).

    Read from the state file each time (a small file, read at most a few times a second
    while a deadline is near): a launcher's signal can come while the process starts and
    has no handler yet, and a worker that missed it would judge its retiring generation's
    deadlines, where no check-in arrives any more, and call live canaries down."""
    look_again()
    return _draining


_watched: tuple[str, int] | None = None  # the worker's state file and its generation


def run_as_worker(path: str, generation: int) -> None:
    """The worker process runs on `generation`: `draining` is right from now on (read now,
    before any agent runs: a restarted worker of a generation being drained must never
    judge a deadline), and again at every `look_again`."""
    global _watched
    _watched = (path, generation)
    look_again()


def watch_as_worker() -> None:
    """From now on, every SIGUSR1 from the launcher reads the state file again."""
    if _watched is not None and _watched[0]:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, look_again)


def look_again() -> None:
    """The launcher signalled the worker: read the state file again."""
    global _draining
    if _watched is not None and _watched[0]:
        _draining = read(_watched[0]).current != _watched[1]


# One step of a move (following the live topics, flushing the producer) gets this long; a move
# that stalls is abandoned and tried again at the launcher's next signal (every 2 s).
STEP_TIMEOUT_S = 10.0


async def step(what: str, awaitable: Awaitable[object], timeout_s: float = STEP_TIMEOUT_S) -> None:
    """Await one step of a move, or raise MoveStalled saying which one stalled."""
    try:
        async with asyncio.timeout(timeout_s):
            await awaitable
    except TimeoutError:
        raise MoveStalled(f"{what} took more than {timeout_s:.0f}s") from None


def on_signal(path: str, move: Callable[[Generations], Awaitable[None]]) -> asyncio.Task[None]:
    """Run `move(state)` whenever the launcher signals a new state (and once now): one at a
    time, in order, the latest state read when each begins."""
    wake = asyncio.Event()
    wake.set()
    loop = asyncio.get_running_loop()
    if path:
        loop.add_signal_handler(signal.SIGUSR1, wake.set)

    async def run() -> None:
        while True:
            await wake.wait()
            wake.clear()
            state = read(path)
            try:
                await move(state)
            except (
                MoveStalled
            ) as exc:  # the launcher waits for the acknowledgement, and signals again
                log.warning("moving to log generation %s: %s; trying again", state.stamp, exc)
            except Exception:
                log.exception("could not move to log generation %s", state.stamp)

    return asyncio.create_task(run(), name="log-generations")
