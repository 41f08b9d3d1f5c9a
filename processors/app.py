"""The Faust application that hosts the stream processors ; one module per agent, each
with a `register(app)` function, listed in AGENT_MODULES.

Settings from ARCHITECTURE.md: at_least_once (exactly_once is unreliable in Faust: sinks are
idempotent instead) and short rebalance timings, without which a worker waits ~30 s to join.
"""

from __future__ import annotations

import importlib

import faust

from coalmine.settings import Settings

APP_ID = "coalmine-processors"
AGENT_MODULES: tuple[str, ...] = ("processors.key_usage", "processors.ratelimit")


def create_faust_app(settings: Settings) -> faust.App:
    app = faust.App(
        APP_ID,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=str(settings.data_path / "processors"),  # Faust's default is the cwd
        processing_guarantee="at_least_once",
        web_enabled=False,
        topic_disable_leader=True,
        broker_rebalance_timeout=3,
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
    )
    for module in AGENT_MODULES:
        importlib.import_module(module).register(app)
    return app


def run_worker(settings: Settings) -> None:
    """Run the Faust worker in this process until SIGTERM/SIGINT."""
    from faust.worker import Worker

    from coalmine.log import quiet_client_loggers

    app = create_faust_app(settings)
    quiet_client_loggers()
    worker = Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
