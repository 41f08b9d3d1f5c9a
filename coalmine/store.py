"""The store process: the one owner of ClickHouse writes (and, for chDB, of the data directory).

It applies migrations, re-seeds the keys topic on an empty log, runs the sinks, and — when
ClickHouse is chDB, which only one process may open — answers the API's named queries over a
unix socket (ingest_api.query_backend.StoreQueries).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from clickhouse_connect.driver.client import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from coalmine import log as kafka
from coalmine.clickhouse import connect, migrate
from coalmine.http_server import QuietServer
from coalmine.private import OwnerOnlyProtocol, private_unix_socket
from coalmine.logs import quiet_client_loggers
from coalmine.settings import Settings
from processors.control_sink import reseed_control
from processors.event_sink import EventSink
from processors.heartbeats import heartbeat_decoder
from processors.key_sink import key_rows, reseed_keys
from processors.notifier import flip_decoder
from processors.rollup_sink import RollupSink
from processors.rows import (
    ATTEMPT_COLUMNS,
    CHECKIN_COLUMNS,
    CONTROL_COLUMNS,
    FLIP_COLUMNS,
    KEY_COLUMNS,
    REJECTION_COLUMNS,
    attempt_rows,
    checkin_rows,
    control_rows,
    flip_rows,
    rejection_rows,
)
from processors.topic_sink import ToRows, resume, sink_topic
from queries import QueryError, run_query
from schemas.canaries import DeliveryAttempt
from schemas.control import control_decoder
from schemas.records import rejections_decoder
from schemas.topics import Topic

log = logging.getLogger(__name__)

# A nudge only ends the rests: the sinks then find the new records and stay busy while
# records keep coming, by their own pacing.
NUDGE_HURRY_S = 0.3


async def reseed_if_new_log(
    client: Client, producer: AIOKafkaProducer, probe: AIOKafkaConsumer
) -> None:
    """On a log without the seeded mark (a first start, or a new in-memory log after the
    embedded broker restarted, when `coalmine up` restarts the store too), write keys, canaries, channels, routes and canary states back from ClickHouse, then
    set the mark. A durable Kafka keeps the mark: nothing is written twice there."""
    (mark,) = kafka.partitions_of(Topic.SEEDED)
    if (await probe.end_offsets([mark]))[mark] > 0:
        return
    keys = await reseed_keys(client, producer)
    control = await reseed_control(client, producer)
    if keys or control:
        # INFO: every start of the embedded default does this; nothing is wrong.
        log.info(
            "new log: re-seeded %d keys and %d canaries/channels/routes from ClickHouse",
            keys,
            control,
        )
    await producer.send_and_wait(Topic.SEEDED.topic_name, b"seeded")


def query_app(client: Client, executor: ThreadPoolExecutor) -> Starlette:
    """POST /queries/<name> with JSON parameters -> the query's JSON result."""

    async def run(request: Request) -> Response:
        try:
            params = msgspec.json.decode(await request.body(), type=dict[str, str])
        except msgspec.MsgspecError as exc:
            return Response(msgspec.json.encode({"error": str(exc)}), 400)
        loop = asyncio.get_running_loop()
        now = dt.datetime.now(dt.UTC)
        name = request.path_params["name"]
        try:
            result = await loop.run_in_executor(executor, run_query, client, name, params, now)
        except QueryError as exc:
            return Response(msgspec.json.encode({"error": str(exc)}), 400)
        return Response(msgspec.json.encode(result), 200, media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b"ok")

    async def nudge(request: Request) -> Response:
        """An API process appended after a quiet spell: end the sinks' rests now."""
        kafka.hurry_all(NUDGE_HURRY_S)
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/queries/{name}", run, methods=["POST"]),
            Route("/ready", ready),
            Route("/nudge", nudge, methods=["POST"]),
        ]
    )


async def serve_store(settings: Settings) -> None:
    quiet_client_loggers()
    kafka.rest_when_idle(settings.fetch_rests)
    client = connect(settings)
    migrate(client)
    bootstrap = settings.kafka_bootstrap
    await kafka.wait_for_broker(bootstrap, settings.startup_timeout_s)
    await kafka.create_topics(bootstrap)
    # chDB calls run on one thread: the sinks and the queries never race inside the library.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
    producer = kafka.producer(bootstrap)
    await producer.start()
    probe = kafka.consumer(bootstrap)
    await probe.start()
    await reseed_if_new_log(client, producer, probe)
    await probe.stop()
    idle = kafka.IDLE_WAIT_BACKGROUND_MS
    events_consumer = kafka.consumer(
        bootstrap, idle, group_id=settings.sink_group, max_partition_fetch_bytes=8 * 1024 * 1024
    )
    await events_consumer.start()
    keys_consumer = await kafka.start_follower(bootstrap, Topic.KEYS, idle_wait_ms=idle)
    control_consumer = await kafka.start_follower(bootstrap, Topic.CONTROL, idle_wait_ms=idle)

    async def group_consumer(topic: Topic) -> AIOKafkaConsumer:
        consumer = kafka.consumer(bootstrap, idle, group_id=f"coalmine-{topic.name.lower()}-sink")
        await consumer.start()
        consumer.assign(kafka.partitions_of(topic))
        await resume(consumer)
        return consumer

    attempt_decoder = msgspec.json.Decoder(DeliveryAttempt)
    # Low-volume topics: (consumer, table, columns, record -> rows, commit offsets?)
    small_sinks: list[tuple[AIOKafkaConsumer, str, tuple[str, ...], ToRows, bool]] = [
        (keys_consumer, "api_keys", KEY_COLUMNS, key_rows(), False),
        (
            control_consumer,
            "control",
            CONTROL_COLUMNS,
            lambda value: control_rows(control_decoder.decode(value), value),
            False,
        ),
        (
            await group_consumer(Topic.REJECTIONS),
            "rejections",
            REJECTION_COLUMNS,
            lambda value: rejection_rows(rejections_decoder.decode(value)),
            True,
        ),
        (
            await group_consumer(Topic.CHECKINS),
            "checkins",
            CHECKIN_COLUMNS,
            lambda value: checkin_rows(heartbeat_decoder.decode(value)),
            True,
        ),
        (
            await group_consumer(Topic.FLIPS),
            "canary_flips",
            FLIP_COLUMNS,
            lambda value: flip_rows(flip_decoder.decode(value)),
            True,
        ),
        (
            await group_consumer(Topic.DELIVERIES),
            "notification_attempts",
            ATTEMPT_COLUMNS,
            lambda value: attempt_rows(attempt_decoder.decode(value)),
            True,
        ),
    ]
    sink = EventSink(
        client, events_consumer, producer, executor, settings.sink_max_rows, settings.sink_max_wait_s
    )
    rollups_consumer = await group_consumer(Topic.ROLLUPS)
    rollup_sink = RollupSink(client, rollups_consumer, producer, executor)
    # SIGTERM: drain the log into ClickHouse, then exit. The launcher stops the API first, so
    # on a clean stop everything acknowledged is stored even though the embedded log is not.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_stop() -> None:
        kafka.hurry_all(3600.0)  # drain at full speed, without waiting out idle fetch waits
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_stop)
    workers = [
        asyncio.create_task(sink.run(stop), name="event-sink"),
        asyncio.create_task(rollup_sink.run(stop), name="rollups-sink"),
    ] + [
        asyncio.create_task(
            sink_topic(client, consumer, executor, stop, table, columns, to_rows, commit),
            name=f"{table}-sink",
        )
        for consumer, table, columns, to_rows, commit in small_sinks
    ]
    tasks = list(workers)
    server: uvicorn.Server | None = None
    if settings.store_socket:
        # Query results hold event names and messages: this user's processes only.
        listener = private_unix_socket(Path(settings.store_socket))
        config = uvicorn.Config(
            query_app(client, executor), http=OwnerOnlyProtocol, log_level="warning", lifespan="off"
        )
        server = QuietServer(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        tasks.append(asyncio.create_task(server.serve(sockets=[listener]), name="query-socket"))
    try:
        while not all(task.done() for task in workers):
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a task that fails is a bug: surface it to the launcher
                if not stop.is_set():
                    raise RuntimeError(f"{task.get_name()} stopped unexpectedly")
            tasks = [task for task in tasks if not task.done()]
        log.info("drained the log into ClickHouse (%d events stored this run)", sink.stored)
    finally:
        if server is not None:
            server.should_exit = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        consumers = [events_consumer, rollups_consumer] + [entry[0] for entry in small_sinks]
        for consumer in consumers:
            await consumer.stop()
        await producer.stop()
        executor.shutdown(wait=False)
        if settings.store_socket:
            Path(settings.store_socket).unlink(missing_ok=True)
