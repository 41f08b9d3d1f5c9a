"""error_router agent: the events topic in, ErrorAlert records on Topic.ALERTS out, and the
counts canaries over events watch (EventsSeen) onto their check-ins partitions.

Every error (and every event a routing rule sends `immediate`) is decided by the rules
(processors.routing); an immediate one alerts when it opens a quiet window for its (key,
name): the first occurrence, or the first after the window has passed. The windows live in a
changelogged Faust table, so a restarted worker remembers them and does not alert again.

Exactly one alert per window: the alert's id derives from the event that opened it; a crash
between sending the alert and writing the table re-sends the same id, which the notifier
delivers once. Records Faust delivers twice are dropped and holes filled (processors.gapless).
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

from coalmine import log as kafka
from coalmine.settings import Settings
from ingest_api.control import ControlRegistry
from processors.gapless import Gapless
from processors.routing import decide, opens_window, ordered, too_late_to_alert
from schemas.alerts import ErrorAlert
from schemas.canaries import EventsSeen
from schemas.ids import event_id
from schemas.partitions import canary_partition
from schemas.records import record_encoder
from schemas.routes import DigestSchedule, RouteDefined
from schemas.topics import Topic
from schemas.wire import EventType, Timestamp

log = logging.getLogger(__name__)


class RoutedEvent(msgspec.Struct, frozen=True):
    """What the router reads of an event (`meta` and `value` are skipped, not parsed)."""

    type: EventType
    name: str
    message: str | None = None
    ts: Timestamp | None = None


class RoutedBatch(msgspec.Struct, frozen=True):
    batch_id: str
    key_id: str
    received_at: float
    events: list[RoutedEvent]
    historical: bool = False


routed_batch_decoder = msgspec.json.Decoder(RoutedBatch)


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


def register(app: faust.App, settings: Settings) -> None:
    def topic(t: Topic) -> faust.TopicT:
        return app.topic(t.topic_name, key_serializer="raw", value_serializer="raw", partitions=t.partitions)

    events, alerts, checkins = topic(Topic.EVENTS), topic(Topic.ALERTS), topic(Topic.CHECKINS)
    # window key -> when the alert that opened the window fired (epoch seconds, as text)
    windows = app.Table(
        "quiet_windows", partitions=Topic.EVENTS.partitions, key_type=bytes, value_type=bytes
    )
    control = ControlRegistry()
    ready = asyncio.Event()
    default_digest = DigestSchedule("daily", settings.digest_at, settings.digest_timezone)
    guard = Gapless(app, settings, Topic.EVENTS, "error_router")

    @app.task
    async def follow_routes() -> None:
        consumer = await kafka.start_follower(settings.kafka_bootstrap, Topic.CONTROL)
        try:
            await kafka.read_to_end(consumer, control.apply_bytes, "control", settings.startup_timeout_s)
            ready.set()
            await kafka.follow(consumer, control.apply_bytes, "control")
        finally:
            await consumer.stop()

    def opened_at(key: str) -> float | None:
        stored = windows.get(key.encode())
        return None if stored is None else float(stored)

    @app.agent(events, name="error_router")
    async def error_router(stream: faust.StreamT[bytes]) -> None:
        await ready.wait()
        # One record at a time: table writes go to the changelog partition of the record
        # being handled, which is what a rebalanced worker recovers with the partition.
        async for event in stream.events():
            rules = ordered(control.routes.values())
            for partition, offset, value in await guard.records([event]):
                try:
                    batch = routed_batch_decoder.decode(value)
                except msgspec.MsgspecError:
                    log.warning("error_router: unreadable events record at %d/%d", partition, offset)
                    continue
                raised = alerts_of(batch, rules, default_digest, opened_at)
                for alert in raised:
                    delivery = await alerts.send(key=alert.id.encode(), value=record_encoder.encode(alert))
                    await delivery
                for alert in raised:
                    key = window_key(alert.key_id, alert.event_type, alert.name)
                    windows[key.encode()] = repr(alert.at).encode()
                for seen in events_seen(batch, control.event_canaries):
                    await checkins.send(
                        key=seen.canary_id.encode(),
                        value=record_encoder.encode(seen),
                        partition=canary_partition(seen.canary_id),
                    )
