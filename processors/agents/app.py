"""The Faust application that hosts the stream processors ; one module per agent, each
with a `register(app, settings)` function, listed in AGENT_MODULES.

Settings measured on this broker: at_least_once (exactly_once is unreliable in Faust: sinks are
idempotent instead) and short rebalance timings, without which a worker waits ~30 s to join.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Iterable
from pathlib import Path

import faust
from faust.types import TP

from processors.agents import faust_transport
from runtime import generations, nudges
from runtime import kafka_client as kafka
from runtime.settings import Settings
from schemas.topics import processors_group

log = logging.getLogger(__name__)
AGENT_MODULES: tuple[str, ...] = (
    "processors.agents.key_usage",
    "processors.agents.ratelimit_agent",
    "processors.agents.canary_agent",
    "processors.agents.notifier",
    "processors.agents.rollup_agent",  # with the error router
    "processors.agents.digest_agent",
)


def create_faust_app(settings: Settings) -> faust.App:
    # The app id names the worker's group and its tables' changelogs: one per log generation.
    app = faust.App(
        processors_group(),
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

    @app.task
    async def watch_generation() -> None:
        generations.watch_as_worker()

    if settings.worker_socket:

        @app.task
        async def listen_for_nudges() -> None:
            """An API process appended after a quiet spell: end every rest now."""
            nudges.hurry_on_nudges(Path(settings.worker_socket))

    held: set[TP] = set()

    # A second worker joining, or one leaving, moves partitions: say which, at INFO.
    @app.on_partitions_revoked.connect
    async def log_revoked(sender: object, revoked: set[TP], **kwargs: object) -> None:
        log.info("partitions revoked: %s", partitions_text(revoked))

    @app.on_partitions_assigned.connect
    async def log_assigned(sender: object, assigned: set[TP], **kwargs: object) -> None:
        gained, lost = set(assigned) - held, held - set(assigned)
        log.info(
            "partitions assigned: %s (new here: %s; gone: %s)",
            partitions_text(assigned), partitions_text(gained), partitions_text(lost),
        )  # fmt: skip
        held.clear()
        held.update(assigned)

    @app.on_rebalance_complete.connect
    async def announce_ready(sender: object, **kwargs: object) -> None:
        # Partitions assigned and tables recovered: agents and timers are live. The launcher
        # and the tests wait for this file.
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        ready_file.write_text(str(time.time()))

    return app


def partitions_text(partitions: Iterable[TP]) -> str:
    """`coalmine.checkins[0,2] coalmine.events[1]`: topics in order, partitions by number."""
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    if not by_topic:
        return "none"
    return " ".join(
        f"{topic}[{','.join(map(str, sorted(numbers)))}]"
        for topic, numbers in sorted(by_topic.items())
    )


def ready_path(settings: Settings) -> Path:
    return settings.data_path / "processors" / "ready"


def run_worker(settings: Settings) -> None:
    """Run the Faust worker in this process until SIGTERM/SIGINT."""
    from faust.worker import Worker

    from runtime import generations
    from runtime.logging_setup import handler, quiet_client_loggers
    from schemas.topics import set_generation

    # The generation this worker runs on (runtime.generations): until a rotation has drained
    # the old one, a restarted worker goes on with it.
    worker_generation = generations.read(settings.generation_file).worker
    set_generation(worker_generation)
    generations.run_as_worker(settings.generation_file, worker_generation)
    app = create_faust_app(settings)
    quiet_client_loggers()
    kafka.rest_when_idle(settings.fetch_rests)
    # Our one handler (runtime.logging_setup), instead of mode's coloured console one.
    logging_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"coalmine": {"()": lambda: handler("worker", settings.log_format)}},
        "root": {"level": settings.log_level.upper(), "handlers": ["coalmine"]},
    }

    class QuietSignals(Worker):
        """mode's Worker without its debugging signals, whichever installs its handler last:
        SIGUSR1 is the launcher's "the log's generation moved" (runtime.generations), not a
        dump of every task's stack with its locals (the settings, admin token included) into
        the log; SIGUSR2 does not stop the worker in pdb."""

        def _on_sigusr1(self) -> None:
            generations.look_again()

        def _on_sigusr2(self) -> None:
            pass

    worker = QuietSignals(
        app, loglevel=settings.log_level.upper(), quiet=True, logging_config=logging_config
    )
    worker.execute_from_commandline()
