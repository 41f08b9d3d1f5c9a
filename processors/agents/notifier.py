"""notifier agents: every flip to each of its canary's channels, and every error alert and
digest (Topic.ALERTS) to its route's channels (every channel for the defaults), once.

Channel definitions come from the control topic (followed in memory: they are few, and every
worker needs all of them). Every attempt of a delivery (with its retries, runtime.notify_senders)
is published to the deliveries topic, which the store keeps in ClickHouse; that topic is also
this agent's memory: at start it reads it to its end, and a (flip, channel) with any recorded
attempt is not sent again when the flip is seen again after a restart. (A Faust table did the
same job first, but a burst of alerts then queued behind its changelog writes: 200 alerts
took seconds.) Flips are taken in batches and delivered concurrently (at most
MAX_CONCURRENT_DELIVERIES at once), a batch's deliveries starting as soon as it is taken, not
after the previous batch's have all finished: a burst split over several batches (the flips of
200 canaries due at the same second) is one wave of sends, and one slow receiver holds up no
other batch. Batches are acknowledged in order, each once all its deliveries are done.

A channel with a group wait (ChannelDefined.group_wait_s) holds a flip that long for others of
the same status to join it, then sends them as one notification (domain.notification_groups),
recorded under each member's id; the batches holding them are acknowledged once it is sent, so
a crash while a group fills re-reads its flips and groups them again.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import Callable, Sequence
from typing import NamedTuple

import aiohttp
import faust
import msgspec
from faust.types import EventT

from domain.alert_texts import rendered
from domain.notification_groups import rendered_group
from domain.notification_texts import Rendered, rendered_flip
from domain.reminders import ack_url, reminder_due, rendered_reminder
from processors.agents.batching import take_batches
from processors.agents.digest_agent import clock
from processors.agents.topics import log_topic
from runtime import kafka_client as kafka
from runtime.catch_up import CatchUp
from runtime.control_registry import ControlRegistry, ack_link_key
from runtime.metrics import NOTIFICATIONS
from runtime.notify_senders import deliver, http_session
from runtime.settings import Settings
from schemas.alerts import alert_decoder
from schemas.canaries import (
    DeliveryAttempt,
    Flip,
    Incident,
    OpsgenieConfig,
    PagerDutyConfig,
    attempt_decoder,
    flip_decoder,
    incident_id,
)
from schemas.records import record_encoder
from schemas.topics import Topic

log = logging.getLogger(__name__)

BATCH_MAX_FLIPS = 500
BATCH_WITHIN_S = 0.02
MAX_CONCURRENT_DELIVERIES = 64
# Batches taken whose deliveries are not all done yet; the next waits (bounded memory).
MAX_BATCHES_IN_FLIGHT = 16
# Reminders come minutes apart: a few seconds late is nothing, and an idle worker wakes less.
REMIND_CHECK_EVERY_S = 5.0
# Each canary is an incident there, which its own recovery resolves: never grouped.
PAGING_CONFIGS = (PagerDutyConfig, OpsgenieConfig)


class Deliveries:
    """What the notifier agents know, without I/O: the channels (from the control topic) and
    the (notice, channel) pairs that have a recorded attempt, so each is sent once."""

    def __init__(self, control: ControlRegistry | None = None) -> None:
        self.control = control or ControlRegistry()
        self.sent: set[tuple[str, str]] = set()  # (notice id, channel id)

    def remember_attempt(self, value: bytes) -> None:
        """A deliveries topic record: that pair was tried (at start, or by another worker)."""
        attempt = attempt_decoder.decode(value)
        self.sent.add((attempt.flip_id, attempt.channel_id))

    def claim(self, notice_id: str, channel_id: str) -> bool:
        """Whether the pair is still to be sent; once claimed, it is not again."""
        key = (notice_id, channel_id)
        if key in self.sent:
            return False
        self.sent.add(key)
        return True

    def alert_notices(self, value: bytes) -> list[tuple[Rendered, str]]:
        alert = alert_decoder.decode(value)
        notice = rendered(alert)
        # No channels: a default route, which goes to every channel there is.
        return [(notice, channel) for channel in alert.channels or sorted(self.control.channels)]

    def flip_notices(self, value: bytes) -> list[tuple[Flip, str]]:
        """Flips are rendered when sent: alone, or in a group (grouping_wait_s)."""
        flip = flip_decoder.decode(value)
        return [(flip, channel) for channel in flip.channels]

    def grouping_wait_s(self, flip: Flip, channel_id: str) -> float:
        """How long a flip waits for others to join it on this channel (0: not grouped)."""
        channel = self.control.channels.get(channel_id)
        if channel is None or isinstance(channel.config, PAGING_CONFIGS):
            return 0.0
        return channel.group_wait_s


class Group(NamedTuple):
    """Flips of one status waiting for their channel's group wait to end."""

    flips: list[Flip]
    sent: asyncio.Future[None]


def register(app: faust.App, settings: Settings) -> None:
    flips = log_topic(app, Topic.FLIPS)
    deliveries = log_topic(app, Topic.DELIVERIES)
    alerts = log_topic(app, Topic.ALERTS)
    known = Deliveries()
    control = known.control
    ready = asyncio.Event()
    channels_caught_up: list[CatchUp] = []  # once the follower runs

    @app.task
    async def follow_channels_and_deliveries() -> None:
        bootstrap, timeout = settings.kafka_bootstrap, settings.startup_timeout_s
        channels = await kafka.start_follower(bootstrap, Topic.CONTROL)
        deliveries_log = await kafka.start_follower(bootstrap, Topic.DELIVERIES)
        offsets = kafka.consumer(bootstrap)  # the log's end for CatchUp, never polled
        await offsets.start()
        try:
            await kafka.read_to_end(channels, control.apply_bytes, "control", timeout)
            await kafka.read_to_end(deliveries_log, known.remember_attempt, "deliveries", timeout)
            await deliveries_log.stop()
            # A flip may name a channel created a moment ago, while the follower rests on a
            # quiet log (runtime.kafka_client, "Pacing"): read to the end first.
            channels_caught_up.append(CatchUp(channels, offsets))
            ready.set()
            await kafka.follow(channels, control.apply_bytes, "control")
        finally:
            await channels.stop()
            await offsets.stop()

    async def send(
        notice: Rendered,
        channel_id: str,
        http: aiohttp.ClientSession,
        members: Sequence[str] = (),
    ) -> None:
        """Send one notice and record its attempts: under each member flip's id as well for a
        group (so none of them is sent again, and each canary's history shows it)."""
        channel = control.channels.get(channel_id)
        if channel is None and channels_caught_up and await channels_caught_up[0].wait():
            channel = control.channels.get(channel_id)
        if channel is None:
            attempts = [
                DeliveryAttempt(
                    notice.id, channel_id, "webhook", 1, notice.at, False, "channel deleted"
                )
            ]
        else:
            async with limit:
                attempts = await deliver(channel.config, channel_id, notice, http)
        final = attempts[-1]
        NOTIFICATIONS.labels(final.channel_kind, "sent" if final.ok else "failed").inc()
        for notice_id in members or [notice.id]:
            for attempt in attempts:
                attempt = msgspec.structs.replace(attempt, flip_id=notice_id)
                await deliveries.send(key=notice_id.encode(), value=record_encoder.encode(attempt))

    limit = asyncio.Semaphore(MAX_CONCURRENT_DELIVERIES)
    groups: dict[tuple[str, str], Group] = {}  # (channel, status) -> the group filling up
    waiting: set[asyncio.Task[None]] = set()

    async def send_group(key: tuple[str, str], wait_s: float, http: aiohttp.ClientSession) -> None:
        await asyncio.sleep(wait_s)
        group = groups.pop(key)
        try:
            notice = (
                rendered_flip(group.flips[0], ack_link(group.flips[0]))
                if len(group.flips) == 1
                else rendered_group(group.flips)
            )
            members = [flip.id for flip in group.flips] if len(group.flips) > 1 else []
            await send(notice, key[0], http, members)
            await open_incident(group.flips, key[0])
            group.sent.set_result(None)
        except BaseException as exc:
            group.sent.set_exception(exc)
            raise

    async def dispatch(item: Rendered | Flip, channel_id: str, http: aiohttp.ClientSession) -> None:
        """Send a notice now, or a flip now or with the group it joins on its channel; return
        once it is recorded (its batch is acknowledged then)."""
        if not known.claim(item.id, channel_id):
            return
        if not isinstance(item, Flip):
            return await send(item, channel_id, http)
        if item.status == "up":
            await close_incident(item.canary_id, channel_id)
        wait_s = known.grouping_wait_s(item, channel_id)
        if wait_s <= 0:
            await send(rendered_flip(item, ack_link(item)), channel_id, http)
            return await open_incident([item], channel_id)
        key = (channel_id, item.status)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group([], asyncio.get_running_loop().create_future())
            task = asyncio.create_task(send_group(key, wait_s, http), name=f"group {key}")
            waiting.add(task)  # a task nothing refers to may be collected before it runs
            task.add_done_callback(waiting.discard)
        group.flips.append(item)
        await asyncio.shield(group.sent)

    # --- reminders (domain.reminders) ------------------------------------------------------
    control_out = log_topic(app, Topic.CONTROL)
    link_key = ack_link_key(settings)
    now = clock(settings)

    def reminds(channel_id: str) -> bool:
        channel = control.channels.get(channel_id)
        return channel is not None and channel.remind_every_s > 0

    def ack_link(flip: Flip) -> str:
        if flip.status != "down" or not any(reminds(c) for c in flip.channels):
            return ""
        return ack_url(settings.link_url, link_key, flip.id)

    async def write(incident: Incident) -> None:
        """On the control topic (event-sourced, carried across rotations), and applied here
        at once: the timer must not act on the state before it."""
        await control_out.send(key=incident.id.encode(), value=record_encoder.encode(incident))
        control.apply(incident)

    async def open_incident(flips: list[Flip], channel_id: str) -> None:
        if not reminds(channel_id):
            return
        for flip in flips:
            if flip.status == "down":
                at = now()
                key = incident_id(flip.canary_id, channel_id)
                await write(Incident(key, flip.canary_id, channel_id, flip.id, at, at))

    async def close_incident(canary_id: str, channel_id: str) -> None:
        incident = control.incidents.get(incident_id(canary_id, channel_id))
        if incident is not None and not incident.closed:
            closed = msgspec.structs.replace(incident, closed=True, changed_at=now())
            await write(closed)

    async def remind(incident: Incident, http: aiohttp.ClientSession) -> None:
        canary = control.canaries.get(incident.canary_id)
        channel = control.channels.get(incident.channel_id)
        at = now()
        decision = reminder_due(
            incident,
            channel,
            acknowledged=incident.flip_id in control.acknowledged,
            canary_active=canary is not None and not canary.paused,
            now=at,
        )
        if decision is None:
            return
        if decision == "close" or channel is None or canary is None:
            await write(msgspec.structs.replace(incident, closed=True, changed_at=at))
            return
        link = ack_url(settings.link_url, link_key, incident.flip_id)
        notice = rendered_reminder(incident, canary.name, channel.remind_max, link, at)
        # Claimed already: sent before a restart (its attempt is on the log); only count it.
        if known.claim(notice.id, incident.channel_id):
            await send(notice, incident.channel_id, http)
        await write(msgspec.structs.replace(incident, reminders=decision, changed_at=at))

    def reminds_here() -> bool:
        """One worker reminds: the one that holds the flips topic's first partition."""
        return any(
            tp.topic == Topic.FLIPS.topic_name and tp.partition == 0
            for tp in app.assignor.assigned_actives()
        )

    reminder_http: list[aiohttp.ClientSession] = []

    @app.timer(interval=REMIND_CHECK_EVERY_S, name="send_reminders")
    async def send_reminders() -> None:
        if not ready.is_set() or not reminds_here():
            return
        incidents = control.open_incidents()
        if not incidents:
            return
        if not reminder_http:
            reminder_http.append(http_session(MAX_CONCURRENT_DELIVERIES))
        await asyncio.gather(*(remind(incident, reminder_http[0]) for incident in incidents))

    async def deliver_batches(
        stream: faust.StreamT[bytes],
        what: str,
        notices: Callable[[bytes], Sequence[tuple[Rendered | Flip, str]]],
    ) -> None:
        """Deliver each record's (notice, channel) pairs. A batch's deliveries start at once and
        run concurrently; the batch is acknowledged (offsets committed) only when every delivery
        in it is done and every earlier batch is acknowledged: a crash re-delivers only what the
        deliveries log has not recorded."""
        await ready.wait()
        in_flight: asyncio.Queue[tuple[asyncio.Future[list[None]], list[EventT]]]
        in_flight = asyncio.Queue(MAX_BATCHES_IN_FLIGHT)

        async def acknowledge() -> None:
            while True:
                done, batch = await in_flight.get()
                await done
                for event in batch:
                    await stream.ack(event)

        async with http_session(MAX_CONCURRENT_DELIVERIES) as http:
            acknowledging = asyncio.create_task(acknowledge(), name=f"{what} acknowledge")
            try:
                async for batch in take_batches(
                    stream, BATCH_MAX_FLIPS, within=BATCH_WITHIN_S, ack=False
                ):
                    sends = []
                    for event in batch:
                        try:
                            pairs = notices(event.value)
                        except msgspec.MsgspecError:
                            log.warning("%s: unreadable record skipped", what)
                            continue
                        sends.extend(dispatch(item, channel, http) for item, channel in pairs)
                    putting = asyncio.ensure_future(in_flight.put((asyncio.gather(*sends), batch)))
                    await asyncio.wait({putting, acknowledging}, return_when=FIRST_COMPLETED)
                    if acknowledging.done():  # only by failing: raise it (a failed log append)
                        putting.cancel()
                        acknowledging.result()
            finally:
                acknowledging.cancel()
                while not in_flight.empty():
                    in_flight.get_nowait()[0].cancel()  # replayed after restart if unrecorded

    @app.agent(alerts, name="alert_notifier")
    async def alert_notifier(stream: faust.StreamT[bytes]) -> None:
        await deliver_batches(stream, "alert_notifier", known.alert_notices)

    @app.agent(flips, name="notifier")
    async def notifier(stream: faust.StreamT[bytes]) -> None:
        await deliver_batches(stream, "notifier", known.flip_notices)
