"""Back-pressure: the API sheds ingest load with 503 + Retry-After instead of collapsing.

Two signals, both per API process:
- **The store sink's lag**: records on the events topic the sink has not committed (stored
  in ClickHouse) yet. Above `shed_lag_records` new batches are refused until the lag is back
  under half of it (hysteresis: no flapping at the threshold). Retry-After is the time the
  sink needs to drain the lag at the rate it was seen draining, 1 to 30 s. The lag is read
  once a second: the topic's end offsets (ListOffsets; on the embedded broker it reads low by
  at most one record batch, which does not matter at thousands of records) minus the sink
  group's committed offsets (OffsetFetch; the monitor never joins the group).
- **Requests in flight**: batches waiting for the log's acknowledgement. Above
  `max_in_flight` a request is refused at once instead of queueing behind a slow broker, which
  bounds the process's memory (each holds its body) and keeps latency within budget.

Only ingest is shed: check-ins are small, and a refused one could put a canary down. The lag
of the Faust worker is not a reason to refuse events: it delays alerts and rollups, not
storage, and its own catch-up does not depend on new events being refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time

from aiokafka import AIOKafkaConsumer

from runtime import kafka_client as kafka
from runtime.metrics import CONSUMER_LAG
from schemas.topics import Topic, current_generation, processors_group

log = logging.getLogger(__name__)

WATCH_EVERY_S = 1.0
# While the log's end does not move and nothing is behind, the lag cannot grow: the reading (three broker requests)
# backs off to this, so an idle API costs the broker nothing. Shedding starts at tens of
# thousands of batches behind, far more than arrive before the next reading.
WATCH_IDLE_S = 8.0
RETRY_AFTER_MIN_S, RETRY_AFTER_MAX_S = 1, 30


class Backpressure:
    """Whether to refuse ingest now, and for how long. Pure: fed lag observations."""

    def __init__(self, shed_lag_records: int, max_in_flight: int) -> None:
        self.shed_lag_records = shed_lag_records  # 0: never shed on lag
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.shedding = False
        self.behind = 0
        self.retry_after_s = RETRY_AFTER_MIN_S
        self._last: tuple[float, int] | None = None  # (time, committed total) seen last

    def observe(self, behind: int, committed_total: int, now: float) -> None:
        """One reading: records behind, and the sum of committed offsets (to see the drain)."""
        drain_per_s = 0.0
        if self._last is not None and now > self._last[0]:
            drain_per_s = max(0.0, (committed_total - self._last[1]) / (now - self._last[0]))
        self._last = (now, committed_total)
        self.behind = behind
        if not self.shed_lag_records:
            self.shedding = False
            return
        if self.shedding:
            self.shedding = behind > self.shed_lag_records // 2
        else:
            self.shedding = behind > self.shed_lag_records
        wait = behind / drain_per_s if drain_per_s > 0 else RETRY_AFTER_MAX_S
        self.retry_after_s = int(min(RETRY_AFTER_MAX_S, max(RETRY_AFTER_MIN_S, math.ceil(wait))))

    def refusal(self) -> str | None:
        """Why a new batch is refused now, or None to take it."""
        if self.shedding:
            return f"the pipeline is {self.behind:,} batches behind; retry in {self.retry_after_s}s"
        if self.in_flight >= self.max_in_flight:
            return f"{self.in_flight} batches are waiting for the log; retry shortly"
        return None


async def watch_sink_lag(bootstrap: str, sink_group: str, backpressure: Backpressure) -> None:
    """Feed `backpressure` the sink's lag every WATCH_EVERY_S, forever, and publish the lag of
    the sink and of the processors (Faust) as the coalmine_consumer_lag metric. A failed
    reading keeps the last verdict (the broker being down already answers 503 on its own)."""
    monitors: dict[str, AIOKafkaConsumer] = {}
    generation = current_generation()
    last_ends: dict[object, int] = {}
    busy, lagging, every_s = True, True, WATCH_EVERY_S
    try:
        while True:
            # In this process's current log generation (a rotation moves both).
            tps = kafka.partitions_of(Topic.EVENTS)
            groups = (sink_group, processors_group())
            if generation != current_generation():
                # New clients: an old one would keep asking about the old generation's topics.
                generation = current_generation()
                for monitor in monitors.values():
                    await _stop(monitor)
                monitors.clear()
            try:
                for group in groups:
                    if group not in monitors:
                        monitors[group] = kafka.consumer(bootstrap, group_id=group)
                        await monitors[group].start()
                ends = await asyncio.wait_for(monitors[sink_group].end_offsets(tps), 5)
                busy, last_ends = ends != last_ends, ends
                # Nothing written since a reading that found every group caught up: the
                # commits cannot have moved either, so skip the eight OffsetFetch requests.
                if busy or lagging:
                    lagging = False
                    for group in groups:
                        committed = {
                            tp: await asyncio.wait_for(monitors[group].committed(tp), 5) or 0
                            for tp in tps
                        }
                        behind = sum(max(0, ends[tp] - committed[tp]) for tp in tps)
                        lagging = lagging or behind > 0
                        CONSUMER_LAG.labels(group, Topic.EVENTS.topic_name).set(behind)
                        if group == sink_group:
                            backpressure.observe(behind, sum(committed.values()), time.monotonic())
            except Exception as exc:  # noqa: BLE001 - never let the watcher die
                log.debug("consumer lag not read (%r)", exc)
                for monitor in monitors.values():
                    await _stop(monitor)
                monitors.clear()
            every_s = WATCH_EVERY_S if busy or lagging else min(WATCH_IDLE_S, every_s * 2)
            await asyncio.sleep(every_s)
    finally:
        for monitor in monitors.values():
            await _stop(monitor)


async def _stop(consumer: AIOKafkaConsumer) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(consumer.stop(), 5)
