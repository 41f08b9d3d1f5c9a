#!/usr/bin/env python3
"""Ingest throughput benchmark: how many events/s `POST /api/v1/events` accepts, at what
latency, and whether every accepted event reaches ClickHouse.

    python bench/ingest.py [--seconds 20] [--connections 32] [--batch 100]
                           [--url URL --admin-token=TOKEN | --admin-token-file PATH]

Without --url it starts `coalmine up` on a free port with a temporary data directory, and
stops it (SIGTERM) at the end, whatever happens. It creates an ingest key through the admin
API, then runs the load generator in a separate process, so that the generator's CPU is not
taken from the API's process: a minimal HTTP/1.1 keep-alive client on raw asyncio streams
(httpx or aiohttp would cost more CPU per request than the server on a 2-core machine).
Each of N connections sends pre-built POST requests one after the other. The first
--warmup seconds are not counted in the figures, but their accepted events are in the total
that ClickHouse must hold.

Then it polls the series query for every event name used until ClickHouse holds exactly as
many events as were accepted (202), and exits non-zero if it does not within
--verify-timeout. Event names carry a per-run tag, so a service with earlier data can be
measured too (as long as nothing else sends the same names).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import json
import multiprocessing
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.limits import MAX_BURST, MAX_RATE_PER_MINUTE

# Twenty names of a plausible app: (name, type, value range or None, meta choices, message).
EVENT_KINDS: list[tuple[str, str, tuple[float, float] | None, list[dict[str, Any]], str | None]] = [
    ("signup", "event", None, [{"plan": "free"}, {"plan": "pro", "source": "ads"}], None),
    ("login", "event", None, [], None),
    ("payment", "event", (5.0, 499.0), [{"plan": "pro", "currency": "EUR"}], None),
    ("subscription-renewed", "event", (9.0, 99.0), [{"plan": "team"}], None),
    ("report-generated", "event", (120.0, 9000.0), [], None),
    ("backup-completed", "event", (1.0e6, 5.0e9), [{"host": "db-1", "kind": "full"}], None),
    ("invoice-sent", "event", None, [{"customer": "acme", "lines": 3}], None),
    ("password-reset", "event", None, [], None),
    ("export-finished", "event", (10.0, 5000.0), [{"format": "csv"}], None),
    ("cron.nightly-cleanup", "event", (0.0, 300.0), [], None),
    ("email-delivered", "event", None, [], None),
    ("cache-warmup", "event", (50.0, 900.0), [], None),
    ("search", "event", (1.0, 250.0), [{"q_len": 12, "results": 40}], None),
    ("page-view", "event", None, [{"path": "/pricing", "referrer": "news.ycombinator.com"}], None),
    (
        "webhook failed",
        "error",
        None,
        [{"endpoint": "https://hooks.example.com/x"}],
        "timeout after 3 retries",
    ),
    (
        "payment declined",
        "error",
        (5.0, 499.0),
        [{"code": "card_declined"}],
        "card_declined: insufficient funds",
    ),
    ("db timeout", "error", (5000.0, 30000.0), [], "canceling statement due to statement timeout"),
    (
        "job crashed",
        "error",
        None,
        [{"job": "sync-crm", "exit_code": 137}],
        'Traceback (most recent call last):\n  File "sync.py", line 42\nMemoryError',
    ),
    ("upstream rate limited", "error", None, [], "429 from api.partner.example"),
    ("email bounced", "error", None, [{"domain": "example.org"}], "550 5.1.1 user unknown"),
]
# Common names are common: weights roughly like a real app's mix.
WEIGHTS = [8, 12, 4, 2, 3, 1, 2, 1, 2, 1, 6, 1, 10, 14, 1, 1, 1, 1, 1, 1]
DISTINCT_BODIES = 8


# --------------------------------------------------------------------------------------------
# Request bodies


def build_bodies(
    tag: str, batch: int, count: int, seed: int = 7
) -> list[tuple[bytes, dict[str, int]]]:
    """`count` different bodies of `batch` events each, with their per-name event counts.
    Every name appears in at least one body, so the verification covers all of them."""
    rng = random.Random(seed)
    bodies = []
    for b in range(count):
        events = []
        names: collections.Counter[str] = collections.Counter()
        for i in range(batch):
            if b * batch + i < len(EVENT_KINDS):  # the first events cover every kind once
                kind = EVENT_KINDS[b * batch + i]
            else:
                kind = rng.choices(EVENT_KINDS, WEIGHTS)[0]
            name, type_, value_range, metas, message = kind
            event: dict[str, Any] = {"type": type_, "name": f"{tag}/{name}"}
            if value_range is not None and rng.random() < 0.9:
                event["value"] = round(rng.uniform(*value_range), 2)
            if metas and rng.random() < 0.5:
                event["meta"] = rng.choice(metas)
            if message is not None:
                event["message"] = message
            events.append(event)
            names[event["name"]] += 1
        body = json.dumps({"events": events}, separators=(",", ":")).encode()
        bodies.append((body, dict(names)))
    return bodies


def build_request(host_header: str, path: str, key: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host_header}\r\n"
        f"Authorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\n"
        "User-Agent: coalmine-bench\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


# --------------------------------------------------------------------------------------------
# The load generator (runs in its own process)


@dataclass
class Phase:
    requests: int = 0
    accepted_events: int = 0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    errors: collections.Counter = field(default_factory=collections.Counter)
    by_body: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    last_done: float = 0.0


class BadResponse(Exception):
    pass


async def _load(conf: dict[str, Any], report: Any) -> dict[str, Any]:
    host, port = conf["host"], conf["port"]
    requests: list[bytes] = conf["requests"]
    warm, meas = Phase(by_body=[0] * len(requests)), Phase(by_body=[0] * len(requests))
    timeline: collections.Counter[int] = collections.Counter()  # measured 202s per second
    clock = time.monotonic

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    conns = [await connect() for _ in range(conf["connections"])]
    start = clock()
    warm_end = start + conf["warmup"]
    end = warm_end + conf["seconds"]
    report.send(("started", start, warm_end, end))
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)

    # Open loop (--rate): each connection sends on a fixed schedule and latency counts from the
    # scheduled time, so a slow answer delays the next ones and is charged to them too (no
    # coordinated omission). Closed loop (default): as fast as answers come.
    interval = len(conns) / conf["rate"] if conf.get("rate") else 0.0

    async def worker(index: int) -> None:
        reader, writer = conns[index]
        n = len(requests)
        k = index % n
        in_flight: Phase | None = None
        next_at = start + interval * index / max(1, len(conns))
        try:
            while True:
                if interval:
                    if next_at >= end:
                        break
                    wait = next_at - clock()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    t0, next_at = next_at, next_at + interval
                else:
                    t0 = clock()
                if t0 >= end:
                    break
                phase = warm if t0 < warm_end else meas
                body_index = k
                k = k + 1 if k + 1 < n else 0
                in_flight = phase
                try:
                    if writer is None:
                        reader, writer = await connect()
                    writer.write(requests[body_index])
                    head = await reader.readuntil(b"\r\n\r\n")
                    if not head.startswith(b"HTTP/1.1 "):
                        raise BadResponse("not an HTTP/1.1 response")
                    status = int(head[9:12])
                    lower = head.lower()
                    at = lower.find(b"\r\ncontent-length:")
                    if at < 0:
                        raise BadResponse("response without Content-Length")
                    length = int(lower[at + 17 : lower.index(b"\r\n", at + 2)])
                    body = await reader.readexactly(length) if length else b""
                    close = b"\r\nconnection: close" in lower
                except (
                    OSError,
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                    BadResponse,
                    ValueError,
                ) as exc:
                    # The server may or may not have stored this batch: outcome unknown.
                    phase.errors[f"{type(exc).__name__}: {exc}"[:80]] += 1
                    in_flight = None
                    if writer is not None:
                        writer.close()
                    writer = None
                    await asyncio.sleep(0.05)
                    continue
                in_flight = None
                t1 = clock()
                phase.requests += 1
                phase.statuses[status] += 1
                phase.last_done = t1
                if status == 202:
                    if body.startswith(b'{"accepted":'):
                        accepted = int(body[12:-1])
                    else:
                        accepted = json.loads(body)["accepted"]
                    phase.accepted_events += accepted
                    phase.by_body[body_index] += 1
                    if phase is meas:
                        timeline[int(t1 - warm_end)] += 1
                if phase is meas:
                    meas.latencies.append(t1 - t0)
                if close:
                    writer.close()
                    writer = None
        except asyncio.CancelledError:
            if in_flight is not None:
                in_flight.errors["no response before the deadline"] += 1
            raise
        finally:
            if writer is not None:
                writer.close()

    tasks = [asyncio.create_task(worker(i)) for i in range(len(conns))]
    _, pending = await asyncio.wait(tasks, timeout=conf["warmup"] + conf["seconds"] + conf["grace"])
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "warmup": warm.__dict__,
        "measure": meas.__dict__,
        "warm_end": warm_end,
        "end": end,
        "timeline": dict(timeline),
        "cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
        "hung": len(pending),
    }


def generator_main(conf: dict[str, Any], report: Any) -> None:
    """Entry point of the generator process: run the load, send the figures back."""
    try:
        try:
            import uvloop

            result = uvloop.run(_load(conf, report))
        except ImportError:
            result = asyncio.run(_load(conf, report))
        report.send(("done", result))
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # noqa: BLE001 (any failure goes to the parent, which prints it)
        report.send(("failed", f"{type(exc).__name__}: {exc}"))


# --------------------------------------------------------------------------------------------
# Talking to the service (admin + query), stdlib only


def call(
    base: str, method: str, path: str, token: str, payload: Any = None, timeout: float = 15.0
) -> tuple[int, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body)
        except ValueError:
            return exc.code, body.decode(errors="replace")


def stored_counts(
    base: str, token: str, names: list[str], since: int, until: int
) -> dict[str, int]:
    counts = {}
    for name in names:
        query = urllib.parse.urlencode(
            {
                "name": name,
                "from": str(since),
                "to": str(until),
                "interval": "1d",
                "source": "events",
            }
        )
        status, result = call(base, "GET", f"/api/v1/query/series?{query}", token)
        if status != 200:
            raise RuntimeError(f"series query for {name!r} answered {status}: {result}")
        counts[name] = sum(point["count"] for point in result["points"])
    return counts


# --------------------------------------------------------------------------------------------
# Running `coalmine up` ourselves


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """`coalmine up` as a child, its output in a log file next to its data directory."""

    def __init__(self, startup_timeout: float, extra_args: list[str] | None = None) -> None:
        self.extra_args = extra_args or []  # more `coalmine up` flags, e.g. --api-workers 2
        self.tmp = Path(tempfile.mkdtemp(prefix="coalmine-bench-"))
        self.data_dir = self.tmp / "data"
        self.log_path = self.tmp / "coalmine.log"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.descendants: dict[int, str] = {}

    def start(self) -> str:
        """Start, wait for the ready line, return the admin token."""
        argv = [
            sys.executable,
            "-m",
            "coalmine",
            "up",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        print(f"starting: {' '.join(argv)}  (log: {self.log_path})", flush=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.tmp,  # Faust writes its data directory into the working directory
                start_new_session=True,  # a terminal's Ctrl-C reaches us; we stop it in order
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads yet; as the launcher)
            )
        started = time.monotonic()
        deadline = started + self.startup_timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            if "Coalmine is up at" in text:
                match = re.search(r"admin token: (\S+)", text)
                if match is None:  # the token line follows the URL line
                    time.sleep(0.1)
                    text = self.log_path.read_text(errors="replace")
                    match = re.search(r"admin token: (\S+)", text)
                print(f"service up in {time.monotonic() - started:.1f}s at {self.base}", flush=True)
                self.descendants = self.find_descendants()
                if match:
                    return Path(match[1]).read_text().strip()
                if os.environ.get("COALMINE_ADMIN_TOKEN"):
                    return os.environ["COALMINE_ADMIN_TOKEN"]
                raise RuntimeError("service up but no admin token path printed")
            if self.process.poll() is not None:
                raise RuntimeError(f"`coalmine up` exited with code {self.process.returncode}")
            time.sleep(0.1)
        raise RuntimeError(f"`coalmine up` not ready within {self.startup_timeout:.0f}s")

    def find_descendants(self) -> dict[int, str]:
        """pid -> role of every process below `coalmine up` (api, store, worker, broker)."""
        assert self.process is not None
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                parents[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
        found: dict[int, str] = {}
        frontier = [self.process.pid]
        while frontier:
            parent = frontier.pop()
            for pid, ppid in parents.items():
                if ppid == parent and pid not in found:
                    found[pid] = role_of(pid)
                    frontier.append(pid)
        return found

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                print("`coalmine up` did not stop within 90s: SIGKILL", file=sys.stderr)
                self.process.kill()
                self.process.wait()
        # Anything it started and left behind (e.g. the broker, which has no death signal).
        for pid, role in self.descendants.items():
            if pid_alive(pid) and role_of(pid) == role:
                print(f"{role} (pid {pid}) outlived `coalmine up`: SIGKILL", file=sys.stderr)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def log_problems(self, limit: int = 40) -> list[str]:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        pattern = re.compile(r"Traceback|ERROR|CRITICAL|WARNING|Error|Exception|exited")
        return [line for line in lines if pattern.search(line)][-limit:]


def role_of(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if "coalmine" in words:
        after = words[words.index("coalmine") + 1 :]
        return after[0] if after else "coalmine"
    return Path(words[0]).name if words else "?"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def system_cpu() -> dict[str, int]:
    """Jiffies of the whole machine by state, from the first line of /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
    return dict(zip(names, map(int, fields)))


def all_cpu_seconds() -> dict[int, float]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            used = cpu_seconds(int(entry))
            if used is not None:
                found[int(entry)] = used
    return found


def cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# Reporting


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"machine: nproc={usable} (cpu_count={os.cpu_count()}), cpu={model!r}, "
        f"python={platform.python_version()} ({platform.python_implementation()}), "
        f"kernel={platform.release()}"
    )


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def run_profiler(pid: int, seconds: float, output: str) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not found: `pip install py-spy` to profile", file=sys.stderr)
        return None
    fmt = (
        "speedscope"
        if output.endswith(".json")
        else "flamegraph"
        if output.endswith(".svg")
        else "raw"
    )
    argv = [
        spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(seconds))),
        "--rate",
        "200",
        "--format",
        fmt,
        "--output",
        output,
        "--nonblocking",
    ]
    print(f"profiling the API (pid {pid}): {' '.join(argv)}", flush=True)
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="measured duration (default 20)")
    p.add_argument(
        "--connections", type=int, default=32, help="keep-alive connections (default 32)"
    )
    p.add_argument("--batch", type=int, default=100, help="events per request, 1-100 (default 100)")
    p.add_argument(
        "--warmup", type=float, default=2.0, help="seconds sent but not measured (default 2)"
    )
    p.add_argument("--url", help="a running service's base URL (default: start `coalmine up`)")
    p.add_argument(
        "--rate", type=float, help="open loop: requests per second in all (default: closed loop)"
    )
    p.add_argument(
        "--api-workers",
        type=int,
        default=1,
        help="API processes of the `coalmine up` started (default 1)",
    )
    p.add_argument(
        "--admin-token",
        help="its admin token (required with --url; write "
        "--admin-token=TOKEN, as a token may start with '-')",
    )
    p.add_argument("--admin-token-file", help="or a file holding it, e.g. DATA_DIR/admin-token")
    p.add_argument(
        "--verify-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for ClickHouse to hold every accepted event (default 120)",
    )
    p.add_argument(
        "--startup-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for `coalmine up` (default 120)",
    )
    p.add_argument(
        "--profile-api",
        metavar="FILE",
        help="record the API process with py-spy during the measured window "
        "(.svg flamegraph, .json speedscope, else raw collapsed stacks)",
    )
    p.add_argument("--api-pid", type=int, help="the API's pid for --profile-api with --url")
    p.add_argument("--keep-data", action="store_true", help="keep the temporary data directory")
    args = p.parse_args(argv)
    if not 1 <= args.batch <= 100:
        p.error("--batch must be 1-100 (the contract's limit)")
    if args.connections < 1 or args.seconds <= 0 or args.warmup < 0:
        p.error("--connections, --seconds must be positive and --warmup not negative")
    if args.admin_token_file and not args.admin_token:
        args.admin_token = Path(args.admin_token_file).read_text().strip()
    if args.url and not args.admin_token:
        p.error("--url needs --admin-token or --admin-token-file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    print(machine(), flush=True)
    service: Service | None = None
    generator: multiprocessing.process.BaseProcess | None = None
    ok = interrupted = False
    try:
        if args.url:
            base, token = args.url.rstrip("/"), args.admin_token
        else:
            service = Service(args.startup_timeout, ["--api-workers", str(args.api_workers)])
            token = service.start()
            base = service.base
        url = urllib.parse.urlsplit(base)
        if url.scheme != "http":
            raise SystemExit("the load generator speaks plain http:// only")
        host, port = url.hostname or "127.0.0.1", url.port or 80
        path_prefix = url.path.rstrip("/")

        tag = "bench-" + secrets.token_hex(3)
        # Limits raised (issue: "keys with limits raised"): this measures throughput, and the
        # bucket is still consulted on every request, so its cost is in the figures.
        status, created = call(
            base,
            "POST",
            "/api/v1/admin/keys",
            token,
            {"name": tag, "rate_per_minute": MAX_RATE_PER_MINUTE, "burst": MAX_BURST},
        )
        if status != 201:
            raise RuntimeError(f"creating a key answered {status}: {created}")
        key = created["key"]
        bodies = build_bodies(tag, args.batch, DISTINCT_BODIES)
        names = sorted({name for _, counts in bodies for name in counts})
        host_header = url.netloc
        requests = [
            build_request(host_header, path_prefix + "/api/v1/events", key, body)
            for body, _ in bodies
        ]
        sizes = [len(body) for body, _ in bodies]
        print(
            f"load: {args.connections} connections, {args.batch} events/request, "
            f"{len(bodies)} distinct bodies of {min(sizes)}-{max(sizes)} bytes, "
            f"{len(names)} names tagged {tag}/, warm-up {args.warmup:g}s + {args.seconds:g}s",
            flush=True,
        )

        conf = {
            "host": host,
            "port": port,
            "requests": requests,
            "connections": args.connections,
            "warmup": args.warmup,
            "seconds": args.seconds,
            "grace": 30.0,
            "rate": args.rate,
        }
        wall_start = time.time()
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        generator = ctx.Process(target=generator_main, args=(conf, theirs), name="bench-load")
        generator.start()
        theirs.close()

        servers = service.descendants if service else {}
        message = ours.recv()
        if message[0] != "started":
            raise RuntimeError(f"load generator failed: {message[1]}")
        _, _, warm_end, end = message
        time.sleep(max(0.0, warm_end - time.monotonic()))
        cpu_before = {pid: cpu_seconds(pid) for pid in servers}
        system_before = system_cpu()
        everyone_before = all_cpu_seconds()
        profiler = None
        if args.profile_api:
            api_pid = args.api_pid or next((p for p, r in servers.items() if r == "api"), None)
            if api_pid is None:
                print("--profile-api: no API pid known (use --api-pid)", file=sys.stderr)
            else:
                profiler = run_profiler(api_pid, args.seconds, args.profile_api)
        time.sleep(max(0.0, end - time.monotonic()))
        cpu_after = {pid: cpu_seconds(pid) for pid in servers}
        system_after = system_cpu()
        everyone_after = all_cpu_seconds()
        cpu_window = time.monotonic() - warm_end
        message = ours.recv()
        generator.join(10)
        if message[0] != "done":
            raise RuntimeError(f"load generator failed: {message[1]}")
        result = message[1]
        if profiler is not None:
            _, err = profiler.communicate(timeout=60)
            print(
                f"py-spy: exit {profiler.returncode}, profile in {args.profile_api}"
                + (
                    f" ({err.decode(errors='replace').strip()[-300:]})"
                    if profiler.returncode
                    else ""
                )
            )

        warm, meas = result["warmup"], result["measure"]
        load_done = max(warm["last_done"], meas["last_done"], result["end"])
        elapsed = (meas["last_done"] or result["end"]) - result["warm_end"]
        lat = sorted(meas["latencies"])
        print("\n== ingest ==")
        print(f"duration:        {elapsed:.2f} s measured (+{args.warmup:g} s warm-up)")
        print(f"requests:        {meas['requests']} ({meas['requests'] / elapsed:,.0f}/s)")
        print(
            f"accepted events: {meas['accepted_events']} -> {meas['accepted_events'] / elapsed:,.0f} events/s"
        )
        print(
            f"latency:         p50 {percentile(lat, 0.50) * 1e3:.1f} ms, "
            f"p99 {percentile(lat, 0.99) * 1e3:.1f} ms, max {(lat[-1] if lat else float('nan')) * 1e3:.1f} ms"
        )
        non_202 = {s: n for s, n in meas["statuses"].items() if s != 202}
        print(f"non-202:         {dict(sorted(non_202.items())) or 'none'}")
        errors = collections.Counter(meas["errors"]) + collections.Counter(warm["errors"])
        print(f"client errors:   {dict(errors) or 'none'}")
        warm_non_202 = {s: n for s, n in warm["statuses"].items() if s != 202}
        print(
            f"warm-up:         {warm['requests']} requests, {warm['accepted_events']} events accepted"
            + (f", non-202 {warm_non_202}" if warm_non_202 else "")
        )
        timeline = result["timeline"]
        seconds = range(int(args.seconds) + 1)
        per_second = [timeline.get(s, timeline.get(str(s), 0)) for s in seconds]
        print(f"202/s by second: {' '.join(str(n) for n in per_second)}")
        if result["hung"]:
            print(f"connections still waiting {conf['grace']:.0f}s after the end: {result['hung']}")
        print(
            f"load generator:  {result['cpu_s']:.1f} CPU-s ({result['cpu_s'] / (load_done - result['warm_end'] + args.warmup) * 100:.0f}% of a core)"
        )
        if servers:
            used = []
            for pid, role in sorted(servers.items(), key=lambda item: item[1]):
                before, after = cpu_before.get(pid), cpu_after.get(pid)
                if before is not None and after is not None:
                    used.append(f"{role} {(after - before) / cpu_window * 100:.0f}%")
            print(f"server CPU:      {', '.join(used)} (of one core, measured window)")
            by_role: collections.Counter[str] = collections.Counter()
            for pid, role in servers.items():
                before, after = cpu_before.get(pid), cpu_after.get(pid)
                if before is not None and after is not None:
                    by_role[role] += after - before
            # The window's CPU over the events accepted in it (answers in the window).
            events = max(meas["accepted_events"], 1)
            print(
                "CPU µs per event: "
                + ", ".join(
                    f"{role} {spent / events * 1e6:.2f}" for role, spent in sorted(by_role.items())
                )
            )
        spent = {k: system_after[k] - system_before[k] for k in system_after}
        ticks = sum(spent.values()) or 1
        busy = ticks - spent["idle"] - spent["iowait"]
        print(
            f"machine CPU:     {busy / ticks * 100:.0f}% busy of {len(os.sched_getaffinity(0))} cores "
            f"(user {spent['user'] / ticks * 100:.0f}%, system {(spent['system'] + spent['irq'] + spent['softirq']) / ticks * 100:.0f}%, "
            f"iowait {spent['iowait'] / ticks * 100:.0f}%, steal {spent['steal'] / ticks * 100:.0f}%) in the measured window"
        )
        ours_pids = set(servers) | {os.getpid(), generator.pid}
        if service and service.process:
            ours_pids.add(service.process.pid)
        others = sorted(
            (
                (everyone_after[pid] - everyone_before.get(pid, 0.0), pid)
                for pid in everyone_after
                if pid not in ours_pids
            ),
            reverse=True,
        )
        others = [(used, pid) for used, pid in others if used / cpu_window > 0.03][:5]
        if others:
            print(
                "other processes: "
                + ", ".join(
                    f"pid {pid} {role_of(pid)} {used / cpu_window * 100:.0f}%"
                    for used, pid in others
                )
                + " (of one core: they share the machine with the benchmark)"
            )

        # ---- verification: ClickHouse must hold exactly the accepted events
        expected_by_name: collections.Counter[str] = collections.Counter()
        for phase in (warm, meas):
            for index, times in enumerate(phase["by_body"]):
                for name, count in bodies[index][1].items():
                    expected_by_name[name] += count * times
        expected = warm["accepted_events"] + meas["accepted_events"]
        if sum(expected_by_name.values()) != expected:
            print(
                f"note: the 202 bodies counted {expected} events, the bodies sent "
                f"{sum(expected_by_name.values())}"
            )
        since, until = int(wall_start) - 300, int(time.time()) + 3600
        print(
            f"\n== pipeline ==\nwaiting for ClickHouse to hold {expected} events "
            f"(up to {args.verify_timeout:.0f}s)…",
            flush=True,
        )
        deadline = time.monotonic() + args.verify_timeout
        last_print = 0.0
        stored_by_name: dict[str, int] = {}
        stored = -1
        while True:
            try:
                stored_by_name = stored_counts(base, token, names, since, until)
                stored = sum(stored_by_name.values())
            except (RuntimeError, OSError) as exc:
                print(f"query failed: {exc}", flush=True)
            now = time.monotonic()
            if stored >= expected or now > deadline:
                break
            if now - last_print >= 5:
                print(f"  {now - load_done:5.1f}s after the load: {stored} stored", flush=True)
                last_print = now
            time.sleep(0.5)
        caught_up = time.monotonic() - load_done
        mismatched = {
            n: (stored_by_name.get(n, 0), expected_by_name[n])
            for n in names
            if stored_by_name.get(n, 0) != expected_by_name[n]
        }
        if stored == expected and not mismatched:
            print(
                f"caught up {max(0.0, caught_up):.1f}s after the last response "
                f"({expected / (load_done - result['warm_end'] + args.warmup + max(0.0, caught_up)):,.0f} events/s end to end)"
            )
            print(f"stored == accepted: OK ({stored} events in ClickHouse)")
            ok = True
            window = {"from": str(wall_start + args.warmup), "to": str(time.time())}
            status, fresh = call(
                base, "GET", "/api/v1/query/freshness?" + urllib.parse.urlencode(window), token
            )
            if status == 200 and fresh["events"]:
                print(
                    f"freshness (accepted -> stored in ClickHouse), {fresh['events']:,} events after"
                    f" the warm-up: p50 {fresh['p50_ms']:,.0f} ms, p99 {fresh['p99_ms']:,.0f} ms,"
                    f" max {fresh['max_ms']:,.0f} ms"
                )
        else:
            print(
                f"stored == accepted: MISMATCH — stored {stored}, accepted {expected} "
                f"({stored - expected:+d}), checked {caught_up:.1f}s after the load"
            )
            for name, (got, want) in list(mismatched.items())[:10]:
                print(f"  {name}: stored {got}, accepted {want}")
            unknown = sum(errors.values())
            if unknown:
                print(
                    f"  note: {unknown} request(s) got no response (client errors above); the "
                    "service may have stored them, so up to that many batches may be extra"
                )
        if service:
            problems = service.log_problems()
            if problems:
                print(
                    f"\n== service log: {len(problems)} warning/error line(s) ({service.log_path}) =="
                )
                for line in problems:
                    print("  " + line[:300])
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        interrupted = True
        return 130
    except (RuntimeError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        if service:
            tail = (
                service.log_path.read_text(errors="replace").splitlines()[-40:]
                if service.log_path.exists()
                else []
            )
            if tail:
                print(f"--- last lines of {service.log_path} ---", file=sys.stderr)
                print("\n".join(tail), file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if generator is not None and generator.is_alive():
            generator.terminate()
            generator.join(5)
        if service is not None:
            service.stop()
            if (ok or interrupted) and not args.keep_data:
                shutil.rmtree(service.tmp, ignore_errors=True)
            else:
                print(f"data and log kept in {service.tmp}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
