"""The error router: events in (the batches the rollups agent reads), ErrorAlert records on
Topic.ALERTS out, and the counts canaries over events watch (EventsSeen) onto their check-ins
partitions.

Every error (and every event a routing rule sends `immediate`) is decided by the rules
(domain.routing_rules); an immediate one alerts when it opens a quiet window for its (key,
name): the first occurrence, or the first after the window has passed. The windows are kept
in memory and rebuilt at start from the alerts topic (every alert is the opening of a
window), so a restarted worker remembers them and does not alert again.

Exactly one alert per window: the alert's id derives from the event that opened it; a crash
after sending the alert but before the records were acknowledged re-sends the same id, which
the notifier delivers once. The rollups agent's guard (processors.agents.gapless) drops records
Faust delivers twice and fills the holes, for the router too.
An alert a silence matches (domain.quiet.silence_of, by the batch's arrival) is not sent and
opens no window: the first occurrence after the silence ends alerts.
Historical batches (the bulk lane) and occurrences older than their window when they arrived
never alert; they reach the digest through the rollups like everything else.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

import faust
import msgspec

from domain.notification_texts import one_line
from domain.quiet import silence_of
from domain.routing_rules import decide, opens_window, ordered, too_late_to_alert
from processors.agents.topics import log_topic
from runtime import kafka_client as kafka
from runtime.control_registry import ControlRegistry
from runtime.retry import until_done
from runtime.settings import Settings
from schemas.alerts import ErrorAlert, alert_decoder
from schemas.canaries import EventsSeen
from schemas.ids import event_id
from schemas.partitions import canary_partition
from schemas.records import record_encoder
from schemas.rollups import RollupBatch, RollupEvent
from schemas.routing import DigestSchedule, RouteDefined
from schemas.topics import Topic

log = logging.getLogger(__name__)


# What the router reads of an EventBatch is what the rollups agent reads (it decodes each
# record once, for both): type, name, message, ts; the batch's id, key, arrival and lane.
RoutedEvent = RollupEvent
RoutedBatch = RollupBatch


def alerts_of(
    batch: RoutedBatch,
    rules: list[RouteDefined],
    default_digest: DigestSchedule,
    opened_at: Callable[[str], float | None],
) -> list[ErrorAlert]:
    """The alerts a batch raises; `opened_at(window key)` says when the alert that opened a
    window fired (None: never). Pure but for that lookup, which is read-only."""
    if batch.historical:
        return []
    events_too = any(r.mode == "immediate" and r.match_type != "error" for r in rules)
    opened: dict[str, float | None] = {}
    raised = []
    for index, event in enumerate(batch.events):
        if event.type != "error" and not events_too:
            continue
        decision = decide(rules, event.type, event.name, batch.key_id, default_digest)
        if decision.mode != "immediate":
            continue
        at = event.ts.timestamp() if event.ts is not None else batch.received_at
        window = decision.quiet_window_s
        if too_late_to_alert(at, batch.received_at, window):
            continue
        key = window_key(batch.key_id, event.type, event.name)
        if key not in opened:
            opened[key] = opened_at(key)
        if not opens_window(opened[key], at, window):
            continue
        opened[key] = at
        source = event_id(batch.batch_id, index).hex
        raised.append(
            ErrorAlert(
                id=f"alert:{source}",
                key_id=batch.key_id,
                event_type=event.type,
                name=event.name,
                message=event.message or "",
                at=at,
                event_id=source,
                quiet_window_s=window,
                channels=list(decision.channels),
                route_id=decision.route_id,
            )
        )
    return raised


def events_seen(batch: RoutedBatch, watched: dict[str, set[str]]) -> list[EventsSeen]:
    """What a batch tells the canaries over events (`watched`: name -> canary ids), by the
    time it arrived. Historical batches tell them nothing: a backfill neither keeps a canary
    up nor brings it back."""
    if batch.historical or not watched:
        return []
    counts = Counter(event.name for event in batch.events if event.name in watched)
    return [
        EventsSeen(canary_id, count, batch.received_at)
        for name, count in counts.items()
        for canary_id in sorted(watched[name])
    ]


def window_key(key_id: str, event_type: str, name: str) -> str:
    return f"{key_id}\x1f{event_type}\x1f{name}"


class RouterState:
    """The router's state and its pure step, without Faust or a broker: the routing rules and
    event canaries (from the control topic), and when the alert that opened each quiet window
    fired. The windows are rebuilt at start from the alerts topic (every alert is the opening
    of a window), so a restarted worker does not alert again."""

    def __init__(self, default_digest: DigestSchedule, control: ControlRegistry | None = None):
        self.default_digest = default_digest
        self.control = control or ControlRegistry()
        self.opened: dict[str, float] = {}  # window key -> when the alert that opened it fired

    def remember(self, value: bytes) -> None:
        """An alerts topic record: an alert sent (or carried over by a log rotation)."""
        try:
            record = alert_decoder.decode(value)
        except msgspec.MsgspecError:
            return
        if isinstance(record, ErrorAlert):
            self.sent(record)

    def rules(self) -> list[RouteDefined]:
        return ordered(self.control.routes.values())

    def due(self, batch: RoutedBatch, rules: list[RouteDefined]) -> list[ErrorAlert]:
        """The alerts a batch raises now; each opens its window once `sent` says so."""
        return alerts_of(batch, rules, self.default_digest, self.opened.get)

    def sent(self, alert: ErrorAlert) -> None:
        key = window_key(alert.key_id, alert.event_type, alert.name)
        self.opened[key] = max(self.opened.get(key, 0.0), alert.at)

    def seen(self, batch: RoutedBatch) -> list[EventsSeen]:
        """What the batch tells the canaries over events."""
        return events_seen(batch, self.control.event_canaries)


class ErrorRouter:
    """The router's outputs, run by the rollups agent on the batches it reads
    (processors.agents.rollup_agent): one subscriber of the events topic instead of two. (A
    second agent on the topic was seen to make Faust resume it past its commits after a worker
    restart, and then never commit again.) Its state is a RouterState."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.alerts, self.checkins = log_topic(app, Topic.ALERTS), log_topic(app, Topic.CHECKINS)
        self.state = RouterState(
            DigestSchedule("daily", settings.digest_at, settings.digest_timezone)
        )
        self.ready = asyncio.Event()
        state = self.state

        @app.task
        async def follow_routes_and_alerts() -> None:
            bootstrap, timeout = settings.kafka_bootstrap, settings.startup_timeout_s
            consumer = await kafka.start_follower(bootstrap, Topic.CONTROL)
            # Alerts sent, and those a rotation of the log carried over (coalmine.rotation).
            sent = await kafka.start_follower(bootstrap, Topic.ALERTS, Topic.CARRIED)
            try:
                await kafka.read_to_end(consumer, state.control.apply_bytes, "control", timeout)
                await kafka.read_to_end(sent, state.remember, "alerts", timeout)
                await sent.stop()
                self.ready.set()
                await kafka.follow(consumer, state.control.apply_bytes, "control")
            finally:
                await consumer.stop()

    async def route(self, batches: list[RoutedBatch]) -> None:
        """Alerts and canary counts of these batches (in log order), each sent and
        acknowledged, retried until the log takes it: the caller acknowledges the records
        when this returns."""
        await self.ready.wait()
        state = self.state
        rules = state.rules()
        for batch in batches:
            for alert in state.due(batch, rules):
                silence = silence_of(
                    state.control.silences.values(), alert.event_type, alert.name, alert.key_id,
                    batch.received_at,
                )  # fmt: skip
                if silence is not None:
                    log.info(
                        "error alert silenced by %s (%s): %s %s", silence.id, silence.comment,
                        alert.event_type, alert.name, extra={"alert_id": alert.id},
                    )  # fmt: skip
                    continue
                await _sent(self.alerts, alert.id.encode(), record_encoder.encode(alert), None)
                state.sent(alert)
                log.warning(
                    "error alert: %s %s (key %s): %s",
                    alert.event_type,
                    alert.name,
                    alert.key_id,
                    one_line(alert.message or "")[:200],
                    extra={"alert_id": alert.id},
                )
            for seen in state.seen(batch):
                value = record_encoder.encode(seen)
                await _sent(
                    self.checkins, seen.canary_id.encode(), value, canary_partition(seen.canary_id)
                )


async def _sent(topic: faust.TopicT, key: bytes, value: bytes, partition: int | None) -> None:
    async def attempt() -> None:
        delivery = await topic.send(key=key, value=value, partition=partition)
        await delivery

    await until_done(attempt, "error_router: sending", log)
