"""A real Coalmine stack for tests: the Tansu broker and each process role started exactly as
`coalmine up` starts them, but one by one, so a test can SIGKILL and restart any of them."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from coalmine.broker import free_port, start_tansu
from processors.agents.app import ready_path
from runtime import kafka_client as kafka
from runtime.settings import Settings, load_settings
from schemas.limits import MAX_BURST, MAX_RATE_PER_MINUTE
from tests.conftest import wait_for

ROLES = ("store", "worker", "api")
UNLIMITED = {"rate_per_minute": MAX_RATE_PER_MINUTE, "burst": MAX_BURST}


class Stack:
    def __init__(self, root: Path, **settings: Any) -> None:
        self.root = root
        self.broker_port = free_port()
        self.settings: Settings = load_settings(
            {},
            kafka_bootstrap=f"127.0.0.1:{self.broker_port}",
            data_dir=str(root / "data"),
            port=free_port(),
            admin_token=secrets.token_urlsafe(24),
            store_socket=str(root / "store.sock"),
            startup_timeout_s=30,
            **settings,
        )
        self.broker: subprocess.Popen[bytes] | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    # --- lifecycle -------------------------------------------------------------------------
    def start_broker(self) -> None:
        self.broker = start_tansu(self.broker_port)
        asyncio.run(kafka.wait_for_broker(self.settings.kafka_bootstrap, 30))
        asyncio.run(kafka.create_topics(self.settings.kafka_bootstrap))

    def start(self, role: str, name: str | None = None) -> None:
        """Start a role; `name` tells apart several processes of one role (API replicas
        share the port through SO_REUSEPORT)."""
        name = name or role
        log = open(self.root / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "coalmine", role],
            env={**os.environ, **self.settings.to_env()},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if role == "store":
            transport = httpx.HTTPTransport(uds=self.settings.store_socket)
            wait_for(
                lambda: (
                    self._alive(name)
                    and httpx.Client(transport=transport).get("http://store/ready").status_code
                    == 200
                ),
                60,
                "the store",
            )
        elif role == "worker":
            ready = ready_path(self.settings)
            wait_for(lambda: self._alive(name) and ready.exists(), 60, "the worker")
        elif role == "api":
            wait_for(
                lambda: self._alive(name) and self.http().get("/healthz").status_code == 200,
                60,
                "the API",
            )

    def start_all(self) -> Stack:
        self.start_broker()
        for role in ROLES:
            self.start(role)
        return self

    def _alive(self, name: str) -> bool:
        process = self.processes[name]
        if process.poll() is not None:
            tail = (self.root / f"{name}.log").read_text()[-3000:]
            raise AssertionError(f"{name} exited with {process.returncode}:\n{tail}")
        return True

    def kill(self, role: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(role)
        process.send_signal(sig)
        process.wait(30)
        if role == "worker":
            ready_path(self.settings).unlink(missing_ok=True)

    def kill_broker(self) -> None:
        assert self.broker is not None
        self.broker.kill()
        self.broker.wait(10)
        self.broker = None

    def stop(self) -> None:
        order = sorted(self.processes, key=lambda n: -ROLES.index(n.split("-")[0]))
        for name in order:
            if name in self.processes:
                process = self.processes.pop(name)
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self.broker is not None:
            self.kill_broker()

    # --- clients ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.settings.base_url

    def http(self, token: str | None = None, timeout: float = 15.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def admin(self) -> httpx.Client:
        return self.http(self.settings.admin_token)

    def create_key(
        self, name: str = "test", scope: str = "ingest", **limits: int
    ) -> dict[str, Any]:
        """A key; unless limits are given, raised far above what a test sends, so that only
        the rate-limit tests meet the token bucket."""
        body = {"name": name, "scope": scope, **(limits or UNLIMITED)}
        response = self.admin().post("/api/v1/admin/keys", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def series_total(self, name: str, since: str = "-30d", until: str | None = None) -> int:
        """How many events of a name ClickHouse stores (raw events, not the rollups)."""
        response = self.admin().get(
            "/api/v1/query/series",
            params={
                "name": name,
                "from": since,
                "to": until or str(time.time() + 86400),
                "interval": "1d",
                "source": "events",
            },
        )
        assert response.status_code == 200, response.text
        return sum(point["count"] for point in response.json()["points"])


def clickhouse_facts(data_dir: Path, sql: str) -> list[list[Any]]:
    """Run SQL on a stopped stack's chDB from a separate process (chDB allows one per dir)."""
    code = (
        "import json, sys, clickhouse_connect\n"
        f"c = clickhouse_connect.get_client(dsn='chdb://{(data_dir / 'clickhouse').resolve()}')\n"
        "print(json.dumps([list(r) for r in c.query(sys.argv[1]).result_rows], default=str))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, sql], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def latest_snapshot(stack: Stack, key_id: str) -> Any:
    """The ratelimit agent's newest RateSnapshot for a key, read from the log (or None)."""
    from schemas.records import rate_snapshot_decoder
    from schemas.topics import Topic

    async def read() -> Any:
        consumer = await kafka.start_follower(stack.settings.kafka_bootstrap, Topic.RATELIMIT)
        found: list[Any] = []

        def keep(value: bytes) -> None:
            snapshot = rate_snapshot_decoder.decode(value)
            if snapshot.key_id == key_id:
                found.append(snapshot)

        try:
            await kafka.read_to_end(consumer, keep, "rate snapshot", 10)
        finally:
            await consumer.stop()
        return found[-1] if found else None

    return asyncio.run(read())
