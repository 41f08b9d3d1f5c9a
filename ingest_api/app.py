"""The FastAPI application and its lifespan: producer, key registry and query backend are
started before the first request and stopped after the last."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from coalmine import __version__
from coalmine import log as kafka
from coalmine.settings import Settings, SettingsError
from ingest_api import admin, ingest, query
from ingest_api.keys import KeyRegistry, catch_up, follow_keys
from ingest_api.query_backend import DirectQueries, QueryBackend, StoreQueries
from ingest_api.responses import error, json_response
from ingest_api.services import Services
from schemas.topics import Topic

log = logging.getLogger(__name__)


def _query_backend(settings: Settings) -> QueryBackend:
    if settings.store_socket:
        return StoreQueries(settings.store_socket)
    if settings.embedded_clickhouse:
        raise SettingsError(
            "the API cannot open chDB itself: set COALMINE_STORE_SOCKET (coalmine up does)"
            " or COALMINE_CLICKHOUSE_URL"
        )
    from coalmine.clickhouse import connect

    return DirectQueries(connect(settings))


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    kafka.quiet_client_loggers()
    await kafka.wait_for_broker(settings.kafka_bootstrap, settings.startup_timeout_s)
    producer = kafka.producer(settings.kafka_bootstrap)
    await producer.start()
    registry = KeyRegistry()
    keys_consumer = kafka.consumer(settings.kafka_bootstrap)
    await keys_consumer.start()
    keys_consumer.assign(kafka.partitions_of(Topic.KEYS))
    await keys_consumer.seek_to_beginning()
    await catch_up(keys_consumer, registry, settings.startup_timeout_s)
    services = Services(settings, registry, producer, _query_backend(settings))
    services.background.append(asyncio.create_task(follow_keys(keys_consumer, registry)))
    app.state.services = services
    try:
        yield
    finally:
        for task in services.background:
            task.cancel()
        await asyncio.gather(*services.background, return_exceptions=True)
        await keys_consumer.stop()
        await producer.stop()
        await services.queries.close()


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
    app = FastAPI(title="Coalmine", version=__version__, lifespan=_lifespan)
    app.state.settings = settings
    app.include_router(ingest.router)
    app.include_router(admin.router)
    app.include_router(query.router)
    app.add_exception_handler(admin.AdminDenied, _admin_denied)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response(200, {"status": "ok"})

    return app


def app_from_env() -> FastAPI:
    """uvicorn's factory entry point: `uvicorn --factory ingest_api.app:app_from_env`."""
    from coalmine.settings import load_settings

    return create_app(load_settings())
