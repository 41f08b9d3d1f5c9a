"""Wake-ups between the processes of one `coalmine up`: "records were just appended after a
quiet spell". On the embedded broker every reader rests while the log is idle
(runtime.kafka_client, "Pacing"), so without a wake-up the first records after a quiet spell
wait for a rest to run out: up to IDLE_WAIT_WORKER_MS in the worker, where a check-in, a new
canary's definition or a `/fail` then counts seconds late (a canary created into an idle
worker and due 2 s later was judged up to 3 s late). The API nudges the store over its query
socket already (runtime.query_backend); the worker has no socket of its own, so it listens on
a unix datagram socket in the data directory (Settings.worker_socket) and each API process
sends it one byte on its first append after a quiet second. Fire and forget: a nudge that
finds no worker (one restarting, a rotation between workers) is lost, and the rest runs out as
before. The socket file is its user's only (runtime.private): another local user cannot even
hurry the worker.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

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


def drain(sock: socket.socket) -> int:
    """Read every nudge waiting on `sock` (a burst of them is one wake-up); how many."""
    count = 0
    with contextlib.suppress(BlockingIOError, InterruptedError):
        while True:
            sock.recv(64)
            count += 1
    return count


class Nudger:
    """The sending side, one per API process. `path` empty: nobody listens (Kafka, whose
    readers do not rest), and `nudge` does nothing."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._sock: socket.socket | None = None
        if path:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    def nudge(self) -> None:
        if self._sock is None:
            return
        # No listener (ENOENT, ECONNREFUSED) or a full queue (EAGAIN): one is coming anyway.
        with contextlib.suppress(OSError):
            self._sock.sendto(NUDGE, self._path)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
