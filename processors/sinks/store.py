"""The store process: the one owner of ClickHouse writes (and, for chDB, of the data directory).

It applies migrations, re-seeds the keys topic on an empty log, runs the sinks, and — when
ClickHouse is chDB, which only one process may open — answers the API's named queries over a
unix socket (runtime.query_backend.StoreQueries).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import queue
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from clickhouse_connect.driver.client import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.store_rows import (
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
from processors.sinks.control_sink import reseed_control
from processors.sinks.event_sink import EventSink
from processors.sinks.key_sink import key_rows, reseed_keys
from processors.sinks.rollup_sink import RollupSink
from processors.sinks.topic_sink import ToRows, resume, sink_topic
from queries import QueryError, run_query
from runtime import generations, nudges
from runtime import kafka_client as kafka
from runtime.clickhouse_client import connect, migrate
from runtime.http_server import QuietServer
from runtime.logging_setup import quiet_client_loggers
from runtime.private import OwnerOnlyProtocol, private_unix_socket
from runtime.settings import Settings
from schemas.canaries import attempt_decoder, flip_decoder, heartbeat_decoder
from schemas.control import control_decoder
from schemas.records import rejections_decoder
from schemas.topics import Topic, set_generation

log = logging.getLogger(__name__)


async def reseed_if_new_log(
    client: Client, producer: AIOKafkaProducer, probe: AIOKafkaConsumer, generation: int = 0
) -> None:
    """On a log without the seeded mark in `generation` (a first start, or a new in-memory log
    after the embedded broker restarted, when `coalmine up` restarts the store too), write
    keys, canaries, channels, routes and canary states back from ClickHouse, then set the
    mark. A durable Kafka keeps the mark: nothing is written twice there."""
    (mark,) = kafka.partitions_of(Topic.SEEDED, generation)
    if (await probe.end_offsets([mark]))[mark] > 0:
        return
    # Canaries before keys: an API that knows a key again knows the canaries too (a client
    # whose key works is not told its check-in token is unknown); the mark comes last, and
    # until then the API answers an unknown key or token with a 503 (runtime.catch_up).
    control = await reseed_control(client, producer)
    keys = await reseed_keys(client, producer)
    if keys or control:
        # INFO: every start of the embedded default does this; nothing is wrong.
        log.info(
            "new log: re-seeded %d keys and %d canaries/channels/routes from ClickHouse",
            keys,
            control,
        )
    await producer.send_and_wait(Topic.SEEDED.topic_name, b"seeded")


# The API's queries run on threads of their own, each with its own connection: chDB runs the
# queries of different connections in parallel (chdb.connect), so a page's independent
# queries (the events page's series, newest events, percentiles) overlap instead of queuing
# one behind another and behind the sinks' inserts on the sinks' thread. Four: the events
# page asks up to nine at once, and chDB spreads each over the 2-core machine's cores anyway.
QUERY_THREADS = 4


class QueryPool:
    """QUERY_THREADS threads and as many ClickHouse clients: a query takes a free client for
    its run (a client serializes its calls, so sharing one would queue them again)."""

    def __init__(self, settings: Settings, threads: int = QUERY_THREADS) -> None:
        self.clients = [connect(settings) for _ in range(threads)]
        self._free: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for client in self.clients:
            self._free.put(client)
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="clickhouse-query")

    def _run(self, name: str, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
        client = self._free.get()  # never waits: one client per thread
        try:
            return run_query(client, name, params, now)
        finally:
            self._free.put(client)

    async def run(self, name: str, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, name, params, now)

    def close(self) -> None:
        self._executor.shutdown(wait=False)
        for client in self.clients:
            client.close()


def query_app(pool: QueryPool) -> Starlette:
    """POST /queries/<name> with JSON parameters -> the query's JSON result."""

    async def run(request: Request) -> Response:
        try:
            params = msgspec.json.decode(await request.body(), type=dict[str, str])
        except msgspec.MsgspecError as exc:
            return Response(msgspec.json.encode({"error": str(exc)}), 400)
        now = dt.datetime.now(dt.UTC)
        name = request.path_params["name"]
        try:
            result = await pool.run(name, params, now)
        except QueryError as exc:
            return Response(msgspec.json.encode({"error": str(exc)}), 400)
        return Response(msgspec.json.encode(result), 200, media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(
        routes=[
            Route("/queries/{name}", run, methods=["POST"]),
            Route("/ready", ready),
        ]
    )


class SinkSet:
    """Every sink of one log generation: its consumers, and the tasks that store what they
    read until `stop` is set, then drain their generation and return."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.stop = asyncio.Event()
        self.consumers: list[AIOKafkaConsumer] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.events: EventSink | None = None

    def drain(self) -> None:
        # At full speed, without waiting out idle fetch waits; only this set's consumers: a
        # rotation drains the old generation while the new one's sinks go on resting.
        for consumer in self.consumers:
            if isinstance(consumer, kafka.PacedConsumer):
                consumer.hurry(3600.0)
        self.stop.set()

    @property
    def done(self) -> bool:
        return all(task.done() for task in self.tasks)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for consumer in self.consumers:
            await consumer.stop()


async def start_sinks(
    settings: Settings,
    generation: int,
    client: Client,
    executor: ThreadPoolExecutor,
    producer: AIOKafkaProducer,
) -> SinkSet:
    bootstrap = settings.kafka_bootstrap
    idle = kafka.IDLE_WAIT_BACKGROUND_MS
    sinks = SinkSet(generation)
    events_consumer = kafka.consumer(
        bootstrap, idle, group_id=settings.sink_group, max_partition_fetch_bytes=8 * 1024 * 1024
    )
    await events_consumer.start()
    keys_consumer = await kafka.start_follower(
        bootstrap, Topic.KEYS, idle_wait_ms=idle, generations=[generation]
    )
    control_consumer = await kafka.start_follower(
        bootstrap, Topic.CONTROL, idle_wait_ms=idle, generations=[generation]
    )
    sinks.consumers += [events_consumer, keys_consumer, control_consumer]

    async def group_consumer(topic: Topic) -> AIOKafkaConsumer:
        consumer = kafka.consumer(bootstrap, idle, group_id=f"coalmine-{topic.name.lower()}-sink")
        await consumer.start()
        sinks.consumers.append(consumer)
        consumer.assign(kafka.partitions_of(topic, generation))
        await resume(consumer)
        return consumer

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
    sinks.events = EventSink(
        client,
        events_consumer,
        producer,
        executor,
        settings.sink_max_rows,
        settings.sink_max_wait_s,
        generation,
    )
    rollup_sink = RollupSink(client, await group_consumer(Topic.ROLLUPS), producer, executor)
    suffix = f" g{generation}" if generation else ""
    sinks.tasks = [
        asyncio.create_task(sinks.events.run(sinks.stop), name=f"event-sink{suffix}"),
        asyncio.create_task(rollup_sink.run(sinks.stop), name=f"rollups-sink{suffix}"),
    ] + [
        asyncio.create_task(
            sink_topic(client, consumer, executor, sinks.stop, table, columns, to_rows, commit),
            name=f"{table}-sink{suffix}",
        )
        for consumer, table, columns, to_rows, commit in small_sinks
    ]
    return sinks


async def serve_store(settings: Settings) -> None:
    quiet_client_loggers()
    kafka.rest_when_idle(settings.fetch_rests)
    client = connect(settings)
    migrate(client)
    bootstrap = settings.kafka_bootstrap
    await kafka.wait_for_broker(bootstrap, settings.startup_timeout_s)
    state = generations.read(settings.generation_file)
    set_generation(state.current)
    for generation in state.live:
        await kafka.create_topics(bootstrap, generation=generation)
    # The sinks' chDB calls run on one thread, one after another (the API's queries have a
    # QueryPool of their own).
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
    producer = kafka.producer(bootstrap)
    await producer.start()
    probe = kafka.consumer(bootstrap)
    await probe.start()
    # The oldest live generation holds the mark of a seeded log (a rotation carries it on).
    await reseed_if_new_log(client, producer, probe, state.live[0])
    await probe.stop()
    sinks: dict[int, SinkSet] = {}
    retired = asyncio.Event()  # a retiring generation's sinks have returned: look again
    # SIGTERM: drain the log into ClickHouse, then exit. The launcher stops the API first, so
    # on a clean stop everything acknowledged is stored even though the embedded log is not.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_stop() -> None:
        stop.set()
        for sink_set in sinks.values():
            sink_set.drain()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_stop)

    async def move(state: generations.Generations) -> None:
        """Read every live generation; drain the ones no longer live, then say so."""
        set_generation(state.current)
        for generation in state.live:
            if generation not in sinks and not stop.is_set():
                sinks[generation] = await start_sinks(
                    settings, generation, client, executor, producer
                )
                if stop.is_set():  # stopped while these started: drain them too
                    sinks[generation].drain()
        for generation in [g for g in sinks if g not in state.live]:
            sinks[generation].drain()
            await asyncio.wait(sinks[generation].tasks)
            closing = sinks.pop(generation)
            await closing.close()
            log.info("log generation %d drained into ClickHouse", generation)
        kafka.track_only(producer, state.live)
        generations.acknowledge(settings.generation_file, "store", state)
        retired.set()

    mover = generations.on_signal(settings.generation_file, move)
    server: uvicorn.Server | None = None
    pool: QueryPool | None = None
    nudged: socket.socket | None = None
    others: list[asyncio.Task[None]] = [mover]
    if settings.store_socket:
        # An API process appended after a quiet spell: end the sinks' rests now.
        nudged = nudges.hurry_on_nudges(Path(nudges.store_path(settings.store_socket)))
        # Query results hold event names and messages: this user's processes only.
        listener = private_unix_socket(Path(settings.store_socket))
        pool = QueryPool(settings)
        config = uvicorn.Config(
            query_app(pool), http=OwnerOnlyProtocol, log_level="warning", lifespan="off"
        )
        server = QuietServer(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        others.append(asyncio.create_task(server.serve(sockets=[listener]), name="query-socket"))
    stored = 0
    try:
        while not (stop.is_set() and all(s.done for s in sinks.values())):
            waiting = [t for s in sinks.values() for t in s.tasks if not t.done()]
            waiting += [t for t in others if not t.done()]
            retired.clear()
            ended = asyncio.create_task(retired.wait())
            done, _ = await asyncio.wait([*waiting, ended], return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            for task in done:
                if task is ended:
                    continue
                task.result()  # a task that fails is a bug: surface it to the launcher
                owner = next((s for s in sinks.values() if task in s.tasks), None)
                if (task in others and not stop.is_set()) or (
                    owner is not None and not owner.stop.is_set()
                ):
                    raise RuntimeError(f"{task.get_name()} stopped unexpectedly")
        stored = sum(s.events.stored for s in sinks.values() if s.events is not None)
        log.info("drained the log into ClickHouse (%d events stored this run)", stored)
    finally:
        if server is not None:
            server.should_exit = True
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        for sink_set in sinks.values():
            await sink_set.close()
        await producer.stop()
        executor.shutdown(wait=False)
        if pool is not None:
            pool.close()
        if nudged is not None:
            asyncio.get_running_loop().remove_reader(nudged.fileno())
            nudged.close()
            Path(nudges.store_path(settings.store_socket)).unlink(missing_ok=True)
        if settings.store_socket:
            Path(settings.store_socket).unlink(missing_ok=True)
