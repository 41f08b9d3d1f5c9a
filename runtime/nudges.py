"""Wake-ups between the processes of one `coalmine up`: "records were just appended after a
quiet spell". On the embedded broker every reader rests while the log is idle
(runtime.kafka_client, "Pacing"), so without a wake-up the first records after a quiet spell
wait for a rest to run out: up to IDLE_WAIT_WORKER_MS in the worker, where a check-in, a new
canary's definition or a `/fail` then counts seconds late (a canary created into an idle
worker and due 2 s later was judged up to 3 s late), and in the store, where what was
acknowledged is not yet in ClickHouse (a kill -9 of the whole embedded stack loses what the
store has not read). So the worker and the store each listen on a unix datagram socket in the
data directory (Settings.worker_socket; the store's beside its query socket, `store_path`), and
each API process sends both one byte on its first append after a quiet second (`Nudger`).
Fire and forget: a nudge that finds no listener (one restarting, a rotation between workers)
is lost, and the rest runs out as before. The socket files are their user's only
(runtime.private): another local user cannot even hurry a reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterable
from pathlib import Path

from runtime import kafka_client as kafka
from runtime.private import private_unix_socket

NUDGE = b"!"
# A nudge only ends the readers' rests (runtime.kafka_client.hurry_all, for this long): they
# then find the new records and stay busy while records keep coming, by their own pacing.
HURRY_S = 0.3


def listen(path: Path) -> socket.socket:
    """A non-blocking datagram socket at `path` that only this user may send to."""
    sock = private_unix_socket(path, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock


def store_path(store_socket: str) -> str:
    """Where the store listens for nudges: beside its query socket (none without one)."""
    return f"{store_socket}.nudge" if store_socket else ""


def hurry_on_nudges(path: Path) -> socket.socket:
    """Listen at `path` from the running loop: every nudge ends this process's readers' rests
    (kafka_client.hurry_all). A newer listener at the same path (the next worker of a
    rotation) takes it over. The socket is returned for closing."""
    sock = listen(path)

    def woken() -> None:
        if drain(sock):
            kafka.hurry_all(HURRY_S)

    asyncio.get_running_loop().add_reader(sock.fileno(), woken)
    return sock


def drain(sock: socket.socket) -> int:
    """Read every nudge waiting on `sock` (a burst of them is one wake-up); how many."""
    count = 0
    with contextlib.suppress(BlockingIOError, InterruptedError):
        while True:
            sock.recv(64)
            count += 1
    return count


class Nudger:
    """The sending side, one per API process, to every listener's path. Empty paths are left
    out (a worker against Kafka, whose readers do not rest; no store process); with none,
    `nudge` does nothing."""

    def __init__(self, paths: Iterable[str]) -> None:
        self._paths = [path for path in paths if path]
        self._sock: socket.socket | None = None
        if self._paths:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    def nudge(self) -> None:
        if self._sock is None:
            return
        for path in self._paths:
            # No listener (ENOENT, ECONNREFUSED) or a full queue (EAGAIN): one is coming anyway.
            with contextlib.suppress(OSError):
                self._sock.sendto(NUDGE, path)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
