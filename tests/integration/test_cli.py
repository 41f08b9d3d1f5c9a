"""The CLI against a running service: keys create/list/revoke and query series."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import wait_for
from tests.integration.harness import Stack


def coalmine(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COALMINE_ADMIN_TOKEN": stack.settings.admin_token,
        "COALMINE_PORT": str(stack.settings.port),
    }
    return subprocess.run(
        [sys.executable, "-m", "coalmine", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_it_creates_lists_and_revokes_keys(stack: Stack) -> None:
    created = coalmine(stack, "keys", "create", "from-cli", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("ch_live_")

    listed = coalmine(stack, "keys", "list")
    assert listed.returncode == 0
    assert key["id"] in listed.stdout and "from-cli" in listed.stdout
    assert key["key"] not in listed.stdout

    revoked = coalmine(stack, "keys", "revoke", key["id"])
    assert revoked.returncode == 0 and f"revoked {key['id']}" in revoked.stdout
    keys = json.loads(coalmine(stack, "keys", "list", "--json").stdout)
    assert next(k for k in keys if k["id"] == key["id"])["revoked_at"] is not None


def test_it_prints_a_series_with_a_sparkline(stack: Stack, ingest_key: str) -> None:
    events = [{"type": "event", "name": "cli-series", "value": 4}] * 5
    assert stack.http(ingest_key).post("/api/v1/events", json={"events": events}).status_code == 202
    wait_for(lambda: stack.series_total("cli-series") == 5, 30, "events stored")
    # Raw events: the rollups trail them by a second or two (test_query_series covers those).
    shown = coalmine(
        stack,
        "query",
        "series",
        "cli-series",
        "--from",
        "-2h",
        "--interval",
        "1h",
        "--source",
        "events",
    )
    assert shown.returncode == 0, shown.stderr
    assert "cli-series" in shown.stdout and "█" in shown.stdout and "from events" in shown.stdout
    as_json = json.loads(
        coalmine(stack, "query", "series", "cli-series", "--source", "events", "--json").stdout
    )
    assert sum(p["count"] for p in as_json["points"]) == 5
    assert sum(p["value_sum"] for p in as_json["points"]) == 20


def test_it_prints_top_names_errors_percentiles_and_events(stack: Stack, ingest_key: str) -> None:
    day = "2025-04-02"
    events = [
        {"type": "event", "name": "cli-top", "value": v, "ts": f"{day}T08:0{v}:00Z"}
        for v in range(1, 5)
    ] + [{"type": "error", "name": "cli-broken", "message": "disk\nfull", "ts": f"{day}T09:00:00Z"}]
    assert stack.http(ingest_key).post("/api/v1/events", json={"events": events}).status_code == 202
    span = ("--from", f"{day}T00:00:00Z", "--to", f"{day}T23:00:00Z")
    wait_for(lambda: stack.series_total("cli-broken", span[1], span[3]) == 1, 30, "events stored")

    top = coalmine(stack, "query", "top", *span, "--source", "events", "--limit", "1000")
    assert top.returncode == 0, top.stderr
    line = next(row for row in top.stdout.splitlines() if row.startswith("cli-top "))
    assert line.split() == ["cli-top", "4", "0", "+4", "new"]

    errors = coalmine(stack, "query", "errors", *span)
    line = next(row for row in errors.stdout.splitlines() if row.startswith("cli-broken "))
    assert line.split()[1:3] == ["1", "new"] and line.endswith("disk full")

    percentiles = coalmine(stack, "query", "percentiles", "cli-top", *span, "--q", "0.5")
    assert "4 values" in percentiles.stdout
    assert percentiles.stdout.splitlines()[-1].split() == ["0.5", "2.5"]

    first = coalmine(stack, "query", "events", "cli-top", *span, "--limit", "3")
    assert first.stdout.count(f"{day}T08:0") == 3 and "more: --cursor " in first.stdout
    cursor = first.stdout.rsplit("--cursor ", 1)[1].strip()
    rest = json.loads(
        coalmine(stack, "query", "events", "cli-top", *span, "--cursor", cursor, "--json").stdout
    )
    assert [e["value"] for e in rest["events"]] == [1.0] and rest["next_cursor"] is None


def test_it_reports_errors_in_one_line(stack: Stack) -> None:
    wrong = coalmine(stack, "keys", "revoke", "key_missing")
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("coalmine: 404") and "Traceback" not in wrong.stderr
    env_port = {"COALMINE_PORT": "1"}
    down = subprocess.run(
        [sys.executable, "-m", "coalmine", "keys", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COALMINE_ADMIN_TOKEN": "x" * 20, **env_port},
    )
    assert down.returncode == 1 and "cannot reach" in down.stderr


def test_it_sets_limits_and_shows_rejections(stack: Stack) -> None:
    created = json.loads(
        coalmine(
            stack, "keys", "create", "limited-cli", "--rate", "6", "--burst", "2", "--json"
        ).stdout
    )
    assert (created["rate_per_minute"], created["burst"]) == (6, 2)
    changed = coalmine(stack, "keys", "limit", created["id"], "--burst", "3")
    assert changed.returncode == 0 and "6 events/minute, burst 3" in changed.stdout
    client = stack.http(created["key"])
    assert (
        client.post(
            "/api/v1/events", json={"events": [{"type": "event", "name": "c"}] * 4}
        ).status_code
        == 429
    )

    def shown() -> str | None:
        out = coalmine(stack, "query", "rejections", "--from", "-1h").stdout
        return out if created["id"] in out else None

    out = wait_for(shown, 30, "the rejection in the CLI")
    assert "rate_limited" in out


def test_it_manages_canaries(stack: Stack) -> None:
    created = coalmine(
        stack, "canaries", "create", "cli-job", "--interval", "3600", "--grace", "60", "--json"
    )
    assert created.returncode == 0, created.stderr
    job = json.loads(created.stdout)
    assert job["interval_seconds"] == 3600 and job["grace_seconds"] == 60
    listed = coalmine(stack, "canaries", "list")
    assert listed.returncode == 0 and "cli-job" in listed.stdout and job["id"] in listed.stdout
    assert job["token"] not in listed.stdout
    paused = coalmine(stack, "canaries", "pause", job["id"])
    assert paused.returncode == 0 and "paused" in paused.stdout
    resumed = coalmine(stack, "canaries", "resume", job["id"])
    assert resumed.returncode == 0 and "paused" not in resumed.stdout
    deleted = coalmine(stack, "canaries", "delete", job["id"])
    assert deleted.returncode == 0
    assert stack.http().get(f"/checkin/{job['token']}").status_code == 404
    bad = coalmine(stack, "canaries", "create", "bad", "--interval", "0")
    assert bad.returncode == 1 and bad.stderr.startswith("coalmine: 400")


def test_it_says_its_version() -> None:
    from coalmine import __version__

    shown = subprocess.run(
        [sys.executable, "-m", "coalmine", "--version"], capture_output=True, text=True
    )
    assert shown.returncode == 0 and shown.stdout.strip() == f"coalmine {__version__}"


def test_it_stops_quietly_when_its_reader_goes_away(stack: Stack) -> None:
    """`coalmine keys list --json | head -c 0`: the pipe is closed before anything is written."""
    env = {
        **os.environ,
        "COALMINE_ADMIN_TOKEN": stack.settings.admin_token,
        "COALMINE_PORT": str(stack.settings.port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "coalmine", "keys", "list", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(60) == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


def test_client_commands_describe_their_flags_as_a_client_s() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "coalmine", "keys", "list", "--help"], capture_output=True, text=True
    )
    assert "listen on" not in shown.stdout and "the service's host" in shown.stdout


def test_it_creates_a_canary_with_durations(stack: Stack) -> None:
    name = f"cli-durations-{os.getpid()}"
    created = coalmine(
        stack, "canaries", "create", name, "--interval", "1h", "--grace", "10m", "--json"
    )
    assert created.returncode == 0, created.stderr
    canary = json.loads(created.stdout)
    assert (canary["interval_seconds"], canary["grace_seconds"]) == (3600, 600)
    twice = coalmine(stack, "canaries", "create", name, "--interval", "1h")
    assert twice.returncode == 1 and "409" in twice.stderr and "exists already" in twice.stderr
    bad = coalmine(stack, "canaries", "create", name, "--interval", "an hour")
    assert bad.returncode == 2 and "not a duration" in bad.stderr
