"""The Faust application that hosts the stream processors ; one module per agent, each
with a `register(app, settings)` function, listed in AGENT_MODULES.

Settings from ARCHITECTURE.md: at_least_once (exactly_once is unreliable in Faust: sinks are
idempotent instead) and short rebalance timings, without which a worker waits ~30 s to join.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import faust

from coalmine.settings import Settings
from processors import faust_transport
from schemas.topics import PROCESSORS_GROUP

APP_ID = PROCESSORS_GROUP
AGENT_MODULES: tuple[str, ...] = (
    "processors.key_usage",
    "processors.ratelimit",
    "processors.heartbeats",
    "processors.notifier",
    "processors.rollups",  # with the error router
    "processors.digests",
)


def create_faust_app(settings: Settings) -> faust.App:
    app = faust.App(
        APP_ID,
        broker=f"{faust_transport.SCHEME}://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=str(settings.data_path / "processors"),  # Faust's default is the cwd
        processing_guarantee="at_least_once",
        web_enabled=False,
        topic_disable_leader=True,
        broker_rebalance_timeout=3,
        broker_session_timeout=6,
        # A heartbeat is a broker request: every 2 s (a third of the session timeout, as
        # Kafka advises) rather than every second, on a worker that is otherwise idle.
        broker_heartbeat_interval=2,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
    )
    for module in AGENT_MODULES:
        importlib.import_module(module).register(app, settings)
    ready_file = ready_path(settings)
    ready_file.unlink(missing_ok=True)

    @app.on_rebalance_complete.connect
    async def announce_ready(sender: object, **kwargs: object) -> None:
        # Partitions assigned and tables recovered: agents and timers are live. The launcher
        # and the tests wait for this file.
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        ready_file.write_text(str(time.time()))

    return app


def ready_path(settings: Settings) -> Path:
    return settings.data_path / "processors" / "ready"


def run_worker(settings: Settings) -> None:
    """Run the Faust worker in this process until SIGTERM/SIGINT."""
    from faust.worker import Worker

    from coalmine.log import quiet_client_loggers
    from coalmine.logs import handler

    app = create_faust_app(settings)
    quiet_client_loggers()
    # Our one handler (coalmine.logs), instead of mode's coloured console one.
    logging_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"coalmine": {"()": lambda: handler("worker", settings.log_format)}},
        "root": {"level": settings.log_level.upper(), "handlers": ["coalmine"]},
    }
    worker = Worker(app, loglevel=settings.log_level.upper(), quiet=True, logging_config=logging_config)
    worker.execute_from_commandline()
