"""notifier agent: every flip to each of its canary's channels, once.

Channel definitions come from the control topic (followed in memory: they are few, and every
worker needs all of them). A delivery (with its retries, processors.notify_senders) is marked
done in a changelogged table keyed by (flip, channel), so a flip seen again after a restart is
not sent again. Every attempt is published to the deliveries topic, which the store keeps in
ClickHouse.
"""

from __future__ import annotations

import asyncio
import logging

import faust
import httpx
import msgspec

from coalmine import log as kafka
from coalmine.settings import Settings
from ingest_api.control import ControlRegistry
from processors.notify_senders import deliver
from schemas.canaries import DeliveryAttempt, Flip
from schemas.records import record_encoder
from schemas.topics import Topic

log = logging.getLogger(__name__)

flip_decoder = msgspec.json.Decoder(Flip)


def register(app: faust.App, settings: Settings) -> None:
    flips = app.topic(
        Topic.FLIPS.topic_name, key_serializer="raw", value_serializer="raw", partitions=Topic.FLIPS.partitions
    )
    deliveries = app.topic(
        Topic.DELIVERIES.topic_name, key_serializer="raw", value_serializer="raw", partitions=1
    )
    notified = app.Table(
        "notified",
        partitions=Topic.FLIPS.partitions,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,
    )
    control = ControlRegistry()
    ready = asyncio.Event()

    @app.task
    async def follow_channels() -> None:
        consumer = await kafka.start_follower(settings.kafka_bootstrap, Topic.CONTROL)
        try:
            await kafka.read_to_end(consumer, control.apply_bytes, "control", settings.startup_timeout_s)
            ready.set()
            await kafka.follow(consumer, control.apply_bytes, "control")
        finally:
            await consumer.stop()

    async def send(flip: Flip, channel_id: str, http: httpx.AsyncClient) -> None:
        key = f"{flip.id}|{channel_id}".encode()
        if notified.get(key) is not None:
            return
        channel = control.channels.get(channel_id)
        if channel is None:
            attempts = [
                DeliveryAttempt(flip.id, channel_id, "webhook", 1, flip.at, False, "channel deleted")
            ]
        else:
            attempts = await deliver(channel.config, channel_id, flip, http)
        for attempt in attempts:
            await deliveries.send(key=flip.id.encode(), value=record_encoder.encode(attempt))
        notified[key] = b"1"

    @app.agent(flips, name="notifier")
    async def notifier(stream: faust.StreamT[bytes]) -> None:
        await ready.wait()
        async with httpx.AsyncClient(follow_redirects=False) as http:
            async for event in stream.events():
                try:
                    flip = flip_decoder.decode(event.value)
                except msgspec.MsgspecError:
                    log.warning("notifier: unreadable flip skipped")
                    continue
                await asyncio.gather(*(send(flip, c, http) for c in flip.channels))
