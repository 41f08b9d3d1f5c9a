"""The events sink stores every acknowledged event exactly once, across a SIGKILL."""

from __future__ import annotations

import signal
import threading

from tests.conftest import wait_for
from tests.integration.harness import Stack, clickhouse_facts

NAME = "kill-test"
RECOVERY_LINE = "already stored"


class Sender:
    """Sends 100-event batches in a thread and counts only what got a 202."""

    def __init__(self, stack: Stack, key: str) -> None:
        self.stack, self.key = stack, key
        self.acknowledged = 0
        self.running = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        with self.stack.http(self.key) as client:
            seq = 0
            while not self.stopped.is_set():
                if not self.running.wait(0.05):
                    continue
                events = [
                    {"type": "event", "name": NAME, "value": seq * 100 + i} for i in range(100)
                ]
                seq += 1
                try:
                    response = client.post("/api/v1/events", json={"events": events})
                except Exception:
                    continue
                if response.status_code == 202:
                    self.acknowledged += response.json()["accepted"]

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(30)


def _stored_facts(stack: Stack) -> tuple[int, int, int]:
    stack.stop()  # release chDB so this process can read it
    ((rows, distinct, records),) = clickhouse_facts(
        stack.root / "data",
        "SELECT count(), uniqExact(event_id), uniqExact(_partition, _offset)"
        f" FROM events WHERE name = '{NAME}'",
    )
    return rows, distinct, records


def test_it_stores_every_acknowledged_event_once_across_sigkills(own_stack: Stack) -> None:
    # Small sink batches: kills land between inserts and commits over and over.
    own_stack.settings = own_stack.settings.replace(sink_max_rows=500, sink_max_wait_s=0.05)
    own_stack.start_all()
    sender = Sender(own_stack, own_stack.create_key("killer")["key"])
    sender.running.set()
    try:
        for _ in range(4):
            before = sender.acknowledged
            wait_for(lambda before=before: sender.acknowledged >= before + 3000, 60, "traffic")
            own_stack.kill("store", signal.SIGKILL)
            own_stack.start("store")
    finally:
        sender.close()
    total = sender.acknowledged
    wait_for(lambda: own_stack.series_total(NAME) >= total, 120, f"{total} events stored")
    assert _stored_facts(own_stack) == (total, total, total // 100)


def test_it_stores_nothing_twice_when_rereading_rows_it_already_has(own_stack: Stack) -> None:
    """The crash window made deterministic: rows in ClickHouse whose offsets were never
    committed. A sink under a fresh consumer group sees exactly that for the whole log."""
    own_stack.start_all()
    sender = Sender(own_stack, own_stack.create_key("replayer")["key"])
    sender.running.set()
    try:
        wait_for(lambda: sender.acknowledged >= 5000, 60, "traffic")
        # The scenario needs rows already in ClickHouse when the sink starts over.
        wait_for(lambda: own_stack.series_total(NAME) > 0, 60, "rows stored")
        own_stack.kill("store", signal.SIGKILL)
        own_stack.settings = own_stack.settings.replace(sink_group="coalmine-sink-replay")
        own_stack.start("store")
        before = sender.acknowledged
        wait_for(lambda: sender.acknowledged >= before + 2000, 60, "traffic after the restart")
    finally:
        sender.close()
    total = sender.acknowledged
    wait_for(lambda: own_stack.series_total(NAME) >= total, 120, f"{total} events stored")
    assert RECOVERY_LINE in (own_stack.root / "store.log").read_text()
    assert _stored_facts(own_stack) == (total, total, total // 100)
