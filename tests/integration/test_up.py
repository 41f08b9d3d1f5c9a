"""`coalmine up`: the one command, on the embedded default."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from coalmine.broker import free_port
from coalmine.running import UNCLEAN_STOP_WARNING
from tests.conftest import wait_for
from tests.integration.up import Up, alive, descendants


def test_it_runs_everything_keeps_data_across_restarts_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    up = Up(data_dir, free_port())
    try:
        up.wait_ready()
        token_file = data_dir / "admin-token"
        assert f"admin token: {token_file}" in "\n".join(up.lines)
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        admin = {"Authorization": f"Bearer {token}"}
        created = httpx.post(
            f"{up.url}/api/v1/admin/keys", json={"name": "restart"}, headers=admin
        ).json()
        batch = {"events": [{"type": "event", "name": "survivor", "value": 2}] * 3}
        auth = {"Authorization": f"Bearer {created['key']}"}
        assert httpx.post(f"{up.url}/api/v1/events", json=batch, headers=auth).status_code == 202
        series = f"{up.url}/api/v1/query/series?name=survivor&from=-1h&interval=1h&source=events"

        def total() -> int:
            return sum(p["count"] for p in httpx.get(series, headers=admin).json()["points"])

        wait_for(lambda: total() == 3, 30, "the events stored")
        channel = httpx.post(
            f"{up.url}/api/v1/admin/channels",
            json={"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/never"},
            headers=admin,
        ).json()
        job = httpx.post(
            f"{up.url}/api/v1/admin/canaries",
            json={"name": "nightly", "interval_seconds": 3600, "channels": [channel["id"]]},
            headers=admin,
        ).json()
        assert httpx.get(f"{up.url}/checkin/{job['token']}?message=ok").status_code == 200
        # Created just before the stop: a clean stop drains the log into ClickHouse first.
        late = httpx.post(
            f"{up.url}/api/v1/admin/keys", json={"name": "late"}, headers=admin
        ).json()
        assert httpx.post(f"{up.url}/api/v1/events", json=batch, headers=auth).status_code == 202
        children = descendants(up.process.pid)
        assert len(children) >= 4  # broker, store, worker, api
    finally:
        code = up.stop()
    assert code == 0
    wait_for(lambda: not any(alive(pid) for pid in children), 30, "every child to exit")

    up = Up(data_dir, up.port)
    try:
        up.wait_ready()
        assert not any(UNCLEAN_STOP_WARNING in line for line in up.lines)  # it stopped cleanly
        # A restart's re-seeding is routine (INFO), and internal HTTP calls are not logged.
        logged = [json.loads(line) for line in up.lines if line.startswith("{")]
        [reseeded] = [line for line in logged if "re-seeded" in line["msg"]]
        assert reseeded["level"] == "info"
        assert not [line for line in logged if line["logger"].startswith(("httpx", "httpcore"))]
        keys = httpx.get(f"{up.url}/api/v1/admin/keys", headers=admin).json()["keys"]
        assert [k["id"] for k in keys] == [created["id"], late["id"]]
        assert total() == 6  # including the batch acknowledged just before the stop
        # ... and rolled up: the clean stop let the worker finish before the log went away.
        hour = int(time.time()) // 3600 * 3600
        hours = f"{up.url}/api/v1/query/series?name=survivor&from={hour - 7200}&to={hour + 3600}&interval=1h"
        rolled = httpx.get(hours + "&source=rollups", headers=admin).json()["points"]
        assert rolled == httpx.get(hours + "&source=events", headers=admin).json()["points"]
        canaries = httpx.get(f"{up.url}/api/v1/admin/canaries", headers=admin).json()["canaries"]
        assert [(c["id"], c["status"], c["last_message"]) for c in canaries] == [
            (job["id"], "up", "ok")
        ]
        channels = httpx.get(f"{up.url}/api/v1/admin/channels", headers=admin).json()["channels"]
        assert [c["id"] for c in channels] == [channel["id"]]
        assert httpx.get(f"{up.url}/checkin/{job['token']}").status_code == 200
        assert httpx.post(f"{up.url}/api/v1/events", json=batch, headers=auth).status_code == 202
        wait_for(lambda: total() == 9, 30, "old and new events")
        revoked = httpx.delete(f"{up.url}/api/v1/admin/keys/{created['id']}", headers=admin)
        assert revoked.status_code == 200
    finally:
        assert up.stop() == 0


def test_it_refuses_a_busy_port_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "coalmine",
                "up",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_it_refuses_a_second_instance_on_the_same_data_dir(tmp_path: Path) -> None:
    up = Up(tmp_path, free_port())
    try:
        up.wait_ready()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "coalmine",
                "up",
                "--port",
                str(free_port()),
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0
        assert "another coalmine is running" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        up.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COALMINE_PORT": "nope"}, "invalid setting"),
        ({"COALMINE_ADMIN_TOKEN": "short"}, "at least 16"),
    ],
)
def test_it_refuses_bad_settings_in_one_line(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coalmine", "up", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_it_runs_several_api_processes_on_one_port(tmp_path: Path) -> None:
    port = free_port()
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coalmine",
            "up",
            "--api-workers",
            "2",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "COALMINE_ADMIN_TOKEN"},
    )
    try:
        assert up.stdout is not None
        for line in up.stdout:  # bounded by the launcher's own start-up timeout
            if "Coalmine is up at" in line:
                break
        apis = [
            pid
            for pid in descendants(up.pid)
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[3:4] == [b"api"]
        ]
        assert len(apis) == 2
        token = (tmp_path / "admin-token").read_text().strip()
        for _ in range(10):  # new connections: the kernel spreads them over both processes
            response = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/admin/keys",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200
    finally:
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0


def _time_wait_on(port: int) -> int:
    """Connections in TIME_WAIT whose local port is `port` (/proc/net/tcp, state 06)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "06":
            count += 1
    return count


def test_it_restarts_at_once_after_a_stop_under_load(tmp_path: Path) -> None:
    """A stop closes the clients' connections from the server side, which leaves them in
    TIME_WAIT on the port for a minute: the next `coalmine up` must not take them for a
    listener (a process manager restarting it at once would otherwise burn its retries)."""
    import http.client

    up = Up(tmp_path / "data", free_port())
    clients = []
    try:
        up.wait_ready()
        for _ in range(20):  # keep-alive connections, open when the stop comes
            client = http.client.HTTPConnection("127.0.0.1", up.port, timeout=10)
            client.request("GET", "/healthz")
            assert client.getresponse().read() == b'{"status":"ok"}'
            clients.append(client)
    finally:
        assert up.stop() == 0
    for client in clients:
        client.close()
    assert _time_wait_on(up.port) > 0  # the condition this test is about
    again = Up(tmp_path / "data", up.port)
    try:
        again.wait_ready()
        assert httpx.get(f"{again.url}/healthz").status_code == 200
    finally:
        assert again.stop() == 0


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A client command run as a user would, with nothing but the data dir to go by."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COALMINE_ADMIN_TOKEN", "COALMINE_PORT", "COALMINE_HOST", "COALMINE_URL")
    }
    return subprocess.run(
        [sys.executable, "-m", "coalmine", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_the_cli_finds_the_service_it_started_and_a_kill_9_is_told_at_the_next_start(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    up = Up(data_dir, free_port())  # not 8000: the CLI must learn the port from the data dir
    try:
        up.wait_ready()
        assert (data_dir / "url").read_text().strip() == up.url
        created = cli(data_dir, "keys", "create", "found-it", "--json")
        assert created.returncode == 0, created.stderr
        # Flags still win: a wrong port is tried, and said.
        elsewhere = cli(data_dir, "keys", "list", "--port", str(free_port()))
        assert elsewhere.returncode == 1 and "cannot reach" in elsewhere.stderr
        assert "Traceback" not in elsewhere.stderr
        stack = [up.process.pid, *descendants(up.process.pid)]
    except BaseException:
        up.stop()
        raise
    for pid in stack:  # the whole stack at once, as a power cut would
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    up.process.wait(30)
    wait_for(lambda: not any(alive(pid) for pid in stack), 30, "every process gone")

    again = Up(data_dir, up.port)
    try:
        again.wait_ready()
        assert any(UNCLEAN_STOP_WARNING in line for line in again.lines)
        listed = cli(data_dir, "keys", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert "found-it" in listed.stdout
    finally:
        assert again.stop() == 0
    assert not (data_dir / "running").exists()
