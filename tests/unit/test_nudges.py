"""runtime.nudges: the API's "appended after a quiet spell" to the worker and the store, and
the Faust consumer's rest ended from another thread
(processors.agents.faust_transport.ThreadWake)."""

from __future__ import annotations

import asyncio
import stat
import threading
from pathlib import Path

from processors.agents.faust_transport import ThreadWake
from runtime import nudges
from runtime.kafka_client import FetchPacer


def test_a_nudge_reaches_the_listener_and_a_burst_is_read_at_once(tmp_path: Path) -> None:
    path = tmp_path / "worker.sock"
    sock = nudges.listen(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # its user's only
        assert nudges.drain(sock) == 0  # nothing waiting: no block
        sender = nudges.Nudger([str(path)])
        for _ in range(3):
            sender.nudge()
        assert nudges.drain(sock) == 3
        sender.close()
    finally:
        sock.close()


def test_a_nudge_without_a_listener_or_a_socket_is_dropped_quietly(tmp_path: Path) -> None:
    nobody = nudges.Nudger([str(tmp_path / "gone.sock")])
    nobody.nudge()  # no worker (restarting, or between two of a rotation): no error
    nobody.close()
    nudges.Nudger(["", nudges.store_path("")]).nudge()  # Kafka, no store: no socket at all


def test_a_new_listener_takes_the_path_over(tmp_path: Path) -> None:
    """A rotation's new worker binds the path while the old one still runs."""
    path = tmp_path / "worker.sock"
    old = nudges.listen(path)
    new = nudges.listen(path)
    try:
        nudges.Nudger([str(path)]).nudge()
        assert (nudges.drain(new), nudges.drain(old)) == (1, 0)
    finally:
        old.close()
        new.close()


def test_one_nudge_wakes_the_worker_and_the_store(tmp_path: Path) -> None:
    worker, store = tmp_path / "worker.sock", Path(nudges.store_path(str(tmp_path / "store.sock")))
    listeners = [nudges.listen(worker), nudges.listen(store)]
    try:
        nudges.Nudger([str(worker), str(store)]).nudge()
        assert [nudges.drain(sock) for sock in listeners] == [1, 1]
    finally:
        for sock in listeners:
            sock.close()


def test_a_nudge_heard_ends_the_readers_rests(tmp_path: Path) -> None:
    """What the worker and the store run: a nudge on their socket hurries every pacer."""

    async def heard() -> bool:
        pacer = FetchPacer(5_000)
        pacer.rest_until = float("inf")  # resting, as after a quiet spell
        sock = nudges.hurry_on_nudges(tmp_path / "worker.sock")
        try:
            nudges.Nudger([str(tmp_path / "worker.sock")]).nudge()
            async with asyncio.timeout(10):
                await pacer.woken.wait()
            return not pacer.resting(0.0)
        finally:
            asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()

    assert asyncio.run(heard())


def test_a_rest_is_ended_from_another_thread() -> None:
    async def rest() -> bool:
        wake = ThreadWake(asyncio.get_running_loop())
        wake.clear()
        threading.Timer(0.05, wake.set).start()
        try:
            async with asyncio.timeout(10):
                await wake.wait()
        except TimeoutError:
            return False
        return True

    assert asyncio.run(rest())
