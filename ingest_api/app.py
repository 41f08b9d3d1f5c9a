"""The FastAPI application and its lifespan: producer, key registry and query backend are
started before the first request and stopped after the last."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable

from aiokafka import TopicPartition
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Route

from ingest_api import admin_canaries as canaries
from ingest_api import admin_channels as channels
from ingest_api import admin_keys as admin
from ingest_api import (
    admin_quiet,
    asgi,
    badges,
    bulk,
    checkin,
    incidents,
    ingest,
    openapi,
    ping,
    query,
    status_page,
    ui,
)
from ingest_api import admin_routing as routes_admin
from ingest_api.backpressure import Backpressure, watch_sink_lag
from ingest_api.bulk_budget import BulkBudget
from ingest_api.observed import Observed
from ingest_api.ratelimit import RateLimiter
from ingest_api.rejections import RejectionCounter, publish_rejections
from ingest_api.responses import error, json_response
from ingest_api.services import Services
from runtime import __version__, generations
from runtime import kafka_client as kafka
from runtime.catch_up import CatchUp
from runtime.control_registry import ControlRegistry
from runtime.key_registry import KeyRegistry
from runtime.logging_setup import quiet_client_loggers
from runtime.metrics import canary_metrics_text, flush_every, metrics_text
from runtime.query_backend import QueryBackendUnavailable, query_backend_for
from runtime.settings import Settings, SettingsError
from schemas.errors import LogRestoring
from schemas.records import record_encoder
from schemas.topics import Topic, set_generation

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    quiet_client_loggers()
    kafka.rest_when_idle(settings.fetch_rests)
    await kafka.wait_for_broker(settings.kafka_bootstrap, settings.startup_timeout_s)
    bootstrap = settings.kafka_bootstrap
    # A batch the log has not acknowledged when its client got the 503 must not be retried
    # into the log afterwards: the producer gives up on a batch at the same deadline.
    producer = kafka.producer(
        bootstrap, request_timeout_ms=max(1, round(settings.append_timeout_s * 1000))
    )
    await producer.start()
    registry, limiter = KeyRegistry(), RateLimiter(settings.api_workers)
    control = ControlRegistry()
    # Both read to their end before the first request: a restarted API must know every key
    # and must not hand any key a fresh, full bucket.
    # One consumer follows the three topics: while the log is idle that is one held fetch,
    # not three (runtime.kafka_client, "Long-poll waits"). While the log rotates, it follows them in
    # both generations (runtime.generations).
    state = generations.read(settings.generation_file)
    set_generation(state.current)
    follower = await kafka.start_follower(
        bootstrap, *FOLLOWED, idle_wait_ms=kafka.IDLE_WAIT_API_MS, generations=state.live
    )
    appliers = {
        Topic.KEYS: registry.apply_bytes,
        Topic.RATELIMIT: limiter.apply_bytes,
        Topic.CONTROL: control.apply_bytes,
    }
    handlers = {t.name_in(g): apply for g in state.live for t, apply in appliers.items()}
    what = "keys, rate snapshot and control"
    await kafka.read_to_end(follower, handlers, what, settings.startup_timeout_s)
    offsets = kafka.consumer(bootstrap)  # the log's end for runtime.catch_up, never polled
    await offsets.start()
    services = Services(
        settings,
        registry,
        producer,
        query_backend_for(settings),
        limiter,
        RejectionCounter(origin=secrets.token_hex(4)),
        control,
        Backpressure(settings.shed_lag_records, settings.max_in_flight),
        BulkBudget(settings.bulk_rate_per_hour, settings.bulk_burst, settings.api_workers),
        keys_caught_up=CatchUp(
            follower, offsets, live_partitions(Topic.KEYS, state), mark=seeded_mark(state)
        ),
        control_caught_up=CatchUp(
            follower, offsets, live_partitions(Topic.CONTROL, state), mark=seeded_mark(state)
        ),
    )
    services.checkins = checkin.checkin_log(services)
    services.background.append(asyncio.create_task(kafka.follow(follower, handlers, what)))

    async def move(state: generations.Generations) -> None:
        """Append to the current generation from now on, and follow the live ones."""
        set_generation(state.current)
        handlers.update({t.name_in(g): apply for g in state.live for t, apply in appliers.items()})
        await generations.step(
            "following the live topics",
            kafka.refollow(follower, [tp for t in FOLLOWED for tp in live_partitions(t, state)]),
        )
        services.keys_caught_up.wait_for(live_partitions(Topic.KEYS, state), seeded_mark(state))
        services.control_caught_up.wait_for(
            live_partitions(Topic.CONTROL, state), seeded_mark(state)
        )
        # Nothing of this process is left on its way to an older generation (each append is
        # bounded by append_timeout_s: acknowledged, or refused with a 503, by then).
        await generations.step("the appends under way", services.settled([state.current]))
        kafka.track_only(producer, state.live)
        kafka.track_only(offsets, state.live)
        generations.acknowledge(settings.generation_file, "api", state)

    services.background.append(generations.on_signal(settings.generation_file, move))
    services.background.append(
        asyncio.create_task(watch_sink_lag(bootstrap, settings.sink_group, services.backpressure))
    )
    services.background.append(
        asyncio.create_task(
            publish_rejections(
                services.rejections, lambda value: services.append(Topic.REJECTIONS, value)
            )
        )
    )
    services.background.append(asyncio.create_task(flush_every()))
    app.state.services = services
    try:
        yield
    finally:
        await services.checkins.close()
        for task in services.background:
            task.cancel()
        await asyncio.gather(*services.background, return_exceptions=True)
        last = services.rejections.drain(time.time())
        if last is not None:  # counts of the final second, best effort
            with contextlib.suppress(Exception):
                await services.append(Topic.REJECTIONS, record_encoder.encode(last))
        await follower.stop()
        await offsets.stop()
        await producer.stop()
        await services.queries.close()
        services.nudger.close()


FOLLOWED = (Topic.KEYS, Topic.RATELIMIT, Topic.CONTROL)


def live_partitions(topic: Topic, state: generations.Generations) -> list[TopicPartition]:
    return [tp for g in state.live for tp in kafka.partitions_of(topic, g)]


def seeded_mark(state: generations.Generations) -> TopicPartition:
    """Where the store marks a log it has written keys and canaries back onto (the oldest
    live generation holds it; a rotation carries it on)."""
    (mark,) = kafka.partitions_of(Topic.SEEDED, state.live[0])
    return mark


async def _log_restoring(request: Request, exc: Exception) -> Response:
    return error(503, str(exc), {"Retry-After": "1"})


async def _admin_denied(request: Request, exc: Exception) -> Response:
    return error(401, "the admin token is required")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return error(exc.status_code, str(exc.detail))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error(400, str(exc.errors()[0].get("msg", "invalid request")))


def create_app(settings: Settings) -> FastAPI:
    if not settings.admin_token:
        raise SettingsError("COALMINE_ADMIN_TOKEN is required for the API")
    if not settings.kafka_bootstrap:
        raise SettingsError("COALMINE_KAFKA_BOOTSTRAP is required for the API")
    # /docs and /redoc load Swagger UI and ReDoc from the fastapi-offline package, not from a
    # CDN (they work offline), and Swagger UI asks no public validator about our schema.
    app = FastAPIOffline(
        title="Coalmine",
        version=__version__,
        lifespan=_lifespan,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},
    )
    openapi.install(app)
    app.state.settings = settings
    for lane in (ingest.LANE, bulk.LANE):  # documented by ingest_api.openapi
        app.router.routes.append(Route(lane.path, lane, methods=["POST"], include_in_schema=False))
    app.include_router(admin.router)
    app.include_router(canaries.router)
    app.include_router(admin_quiet.router)
    app.include_router(badges.router)
    app.include_router(status_page.router)
    app.include_router(channels.router)
    app.include_router(incidents.router)
    app.include_router(routes_admin.router)
    app.include_router(query.router)
    ui.install(app)  # the web UI at / (ingest_api.ui)
    app.add_exception_handler(admin.AdminDenied, _admin_denied)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(LogRestoring, _log_restoring)

    @app.get("/healthz")
    async def healthz() -> Response:
        """The process is up (liveness)."""
        return json_response(200, {"status": "ok"})

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        """The broker and ClickHouse answer (readiness), each within READY_TIMEOUT_S."""
        services: Services = request.app.state.services
        checks = {
            "broker": services.producer.client.fetch_all_metadata(),
            "clickhouse": services.queries.run("ping", {}),
        }
        parts = {name: await _reachable(check) for name, check in checks.items()}
        ready = all(state == "ok" for state in parts.values())
        return json_response(
            200 if ready else 503, {"status": "ready" if ready else "not ready", **parts}
        )

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus exposition of every process of the service (runtime.metrics), and
        the canaries' status gauges."""
        body, content_type = metrics_text()
        try:
            body += canary_metrics_text(await canaries.canary_views(request.app.state.services))
        except QueryBackendUnavailable:
            pass  # ClickHouse is away: the rest of the metrics still tell about it
        return Response(body, 200, media_type=content_type)

    return app


READY_TIMEOUT_S = 2.0
DOCS_ASSETS = "/docs-assets"


async def _reachable(check: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(check, READY_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {READY_TIMEOUT_S:g}s"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        return f"unavailable ({type(exc).__name__})"
    return "ok"


def route_of(scope: asgi.Scope) -> str:
    """The route template a request was for: never the raw path (check-in tokens are in it)."""
    path = scope["path"]
    if path in (ingest.PATH, bulk.PATH):
        return path
    if path.startswith(checkin.PREFIX):
        return checkin.PREFIX + "{token}"
    if path.startswith(ping.PREFIX):
        return ping.PREFIX + "{token}"  # or ping key and slug: never shown either
    route = scope.get("route")
    return getattr(route, "path", "unmatched")


class HotPathsFirst:
    """The API as served: ingest and check-ins go straight to their plain ASGI handlers
    (ingest_api.asgi says why); everything else, lifespan included, to FastAPI."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def __call__(
        self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send
    ) -> Awaitable[None]:
        # A plain function returning the handler's coroutine: no frame of its own for every
        # resumption of the request's task to pass through.
        if scope["type"] == "http":
            path = scope["path"]
            if path == ingest.PATH and scope["method"] == "POST":
                return ingest.LANE.handle(self.app.state.services, scope, receive, send)
            if path == bulk.PATH and scope["method"] == "POST":
                return bulk.LANE.handle(self.app.state.services, scope, receive, send)
            if path.startswith(checkin.PREFIX):
                return checkin.handle(self.app.state.services, scope, receive, send)
            if path.startswith(ping.PREFIX):
                return ping.handle(self.app.state.services, scope, receive, send)
        return self.app(scope, receive, send)


def serve(settings: Settings) -> Observed:
    """The ASGI application uvicorn runs."""
    return Observed(HotPathsFirst(create_app(settings)), route_of)


def app_from_env() -> Observed:
    """uvicorn's factory entry point: `uvicorn --factory ingest_api.app:app_from_env`."""
    from runtime.settings import load_settings

    return serve(load_settings())
