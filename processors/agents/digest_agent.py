"""digests timer: at the end of each digest period, the digest (domain.digest_plan) of every
plan — the default one and each routing rule's — on Topic.ALERTS for the notifier.

Runs in one worker: the one assigned Topic.ALERTS (one partition, which its notifier agent
consumes). Faust's own leader election needs the leader topic, which this app disables
(processors.agents.app). Counts come from the rollups through the query backend (the
store's socket on the embedded default), never from raw events. A period is built
DIGEST_SETTLE_S after it ends, so the rollups of its last seconds are stored.

What was sent is remembered on the log itself: at start the timer reads Topic.ALERTS and takes,
per plan, the end of its last digest; a plan first seen (a new rule, a fresh log) starts with
the next period end. A digest has an id (`digest:<plan>:<end>`) that the notifier delivers
once, so one built twice (a crash between sending and remembering) is sent once. After a
downtime only the latest period is sent, not every one missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import faust
import msgspec

from domain.digest_plan import DigestPlan, build, period_end_at_or_before, plans, previous_end
from domain.routing_rules import ordered
from processors.agents.topics import log_topic
from queries import QueryError
from runtime import kafka_client as kafka
from runtime.control_registry import ControlRegistry
from runtime.query_backend import QueryBackendUnavailable, query_backend_for
from runtime.settings import Settings
from schemas.alerts import Digest, alert_decoder
from schemas.records import record_encoder
from schemas.routing import DigestSchedule, RouteDefined
from schemas.topics import Topic

log = logging.getLogger(__name__)

# A digest closes DIGEST_SETTLE_S after its period: a few seconds more cost nothing, and an
# idle worker wakes five times less (docs/benchmarks.md, "Idle cost").
CHECK_EVERY_S = 5.0
DIGEST_SETTLE_S = 30.0


def clock(settings: Settings) -> Callable[[], float]:
    """The time digests go by: the system clock, or the number in COALMINE_CLOCK_FILE (tests
    drive digests with it). An unreadable file reads as the system clock."""
    if not settings.clock_file:
        return time.time
    path = Path(settings.clock_file)

    def now() -> float:
        try:
            return float(path.read_text().strip())
        except (OSError, ValueError):
            return time.time()

    return now


class DigestTimer:
    """The digest timer's state and its pure step: when each plan's last digest ended (read
    back from the alerts topic at start, so a restart sends no digest twice), and which
    periods are due now."""

    def __init__(self, default: DigestSchedule) -> None:
        self.default = default
        self.sent_until: dict[str, float] = {}  # plan key -> the end of its last digest

    def remember(self, value: bytes) -> None:
        """An alerts topic record: a digest sent (or carried over by a log rotation)."""
        try:
            record = alert_decoder.decode(value)
        except msgspec.MsgspecError:
            return
        if isinstance(record, Digest):
            key = record.id.split(":")[1]
            self.sent_until[key] = max(self.sent_until.get(key, 0.0), record.end)

    def due(
        self, rules: Iterable[RouteDefined], settled: float
    ) -> list[tuple[DigestPlan, float, float]]:
        """(plan, start, end) of each period that ended by `settled` and was not sent. A plan
        seen for the first time is not due: its first digest is the next period (after a
        downtime too, only the latest period is sent, not every one missed)."""
        due = []
        for plan in plans(rules, self.default):
            end = period_end_at_or_before(plan.schedule, settled)
            last = self.sent_until.get(plan.key)
            if last is None:
                self.sent_until[plan.key] = end
            elif end > last:
                due.append((plan, previous_end(plan.schedule, end), end))
        return due

    def sent(self, plan: DigestPlan, end: float) -> None:
        self.sent_until[plan.key] = end


def register(app: faust.App, settings: Settings) -> None:
    alerts = log_topic(app, Topic.ALERTS)
    control = ControlRegistry()
    ready = asyncio.Event()
    default = DigestSchedule("daily", settings.digest_at, settings.digest_timezone)
    timer = DigestTimer(default)
    now = clock(settings)
    backend = None

    @app.task
    async def follow_routes_and_digests() -> None:
        bootstrap, timeout = settings.kafka_bootstrap, settings.startup_timeout_s
        routes = await kafka.start_follower(bootstrap, Topic.CONTROL)
        # Alerts sent, and those a rotation of the log carried over (coalmine.rotation).
        sent = await kafka.start_follower(bootstrap, Topic.ALERTS, Topic.CARRIED)
        try:
            await kafka.read_to_end(routes, control.apply_bytes, "control", timeout)
            await kafka.read_to_end(sent, timer.remember, "alerts", timeout)
            await sent.stop()
            ready.set()
            await kafka.follow(routes, apply_route, "control")
        finally:
            await routes.stop()

    def apply_route(value: bytes) -> None:
        control.apply_bytes(value)
        # A new route's plan is seen as it arrives, not at the next tick (CHECK_EVERY_S later):
        # its first digest is the period after its creation (DigestTimer.due).
        timer.due(ordered(control.routes.values()), now() - DIGEST_SETTLE_S)

    def builds_here() -> bool:
        return any(tp.topic == Topic.ALERTS.topic_name for tp in app.assignor.assigned_actives())

    @app.timer(interval=CHECK_EVERY_S, name="build_digests")
    async def build_digests() -> None:
        nonlocal backend
        if not ready.is_set() or not builds_here():
            return
        if backend is None:
            backend = query_backend_for(settings)
        rules = ordered(control.routes.values())
        for plan, start, end in timer.due(rules, now() - DIGEST_SETTLE_S):
            params = {
                "from": str(start),
                "to": str(end),
                "previous_from": str(previous_end(plan.schedule, start)),
            }
            try:
                rows = (await backend.run("digest_rows", params))["rows"]
            except (QueryBackendUnavailable, QueryError) as exc:
                log.warning("digests: %s digest ending %s not built yet (%s)", plan.key, end, exc)
                return  # the next tick tries again
            digest = build(plan, start, end, rows, rules, default)
            if digest is not None:
                delivery = await alerts.send(
                    key=digest.id.encode(), value=record_encoder.encode(digest)
                )
                await delivery
                log.info(
                    "digests: %s (%d names, %d errors)",
                    digest.id,
                    len(digest.lines),
                    len(digest.errors),
                )
            timer.sent(plan, end)
