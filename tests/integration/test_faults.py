"""Faults under `coalmine up`, as a user runs it: kill -9 any process while clients keep
sending, and the supervisor restarts it; afterwards ClickHouse holds exactly the acknowledged
events, the rollups equal the raw counts, canaries are in the right state and no alert went
out twice.

The broker is the exception the README states: the embedded one keeps the log in memory, so
its death loses what was acknowledged but not yet stored (the sink trails by ~0.25 s). The
broker test therefore lets the stored count catch up before the kill and starts sending again
only once the broker is dead; what it proves is that nothing gets a 202 while the log is away,
that the stack comes back by itself, and that everything acknowledged afterwards is stored
once, with keys and canaries written back onto the new log.

What a client that got no 202 sent is in doubt, as in any at-least-once system: a request cut
off by a killed API process, or answered 503 when the log's ack came too late, may still have
been stored. So the tests check that ClickHouse holds every acknowledged event, each once, and
nothing beyond the events in doubt.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx

from coalmine.broker import free_port
from schemas.limits import MAX_BURST, MAX_RATE_PER_MINUTE
from tests.conftest import wait_for
from tests.integration.harness import clickhouse_facts
from tests.integration.receivers import HttpReceiver
from tests.integration.up import Up

PREFIX = "fault-"
NAMES = [f"{PREFIX}{n}" for n in ("backup", "deploy", "import")]
ENV = {"COALMINE_APPEND_TIMEOUT_S": "2"}


class Load:
    """100-event batches from a thread, counting events per name that got a 202, and what
    else came back: 503s and refused connections are expected while a process is down."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.acknowledged: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        self.in_doubt = 0  # events sent without a 202 that the log may still have taken
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        i = 0
        while not self.stopped.is_set():
            name = NAMES[i % len(NAMES)]
            i += 1
            events = [
                {"type": "error" if j % 10 == 0 else "event", "name": name, "value": j / 2}
                for j in range(100)
            ]
            try:
                # A fresh connection each time: a killed API process must not take the
                # rest of the run with its keep-alive connection.
                response = httpx.post(
                    f"{self.url}/api/v1/events",
                    json={"events": events},
                    headers=headers,
                    timeout=10,
                )
            except httpx.ConnectError as exc:  # never reached an API process
                self.answers[type(exc).__name__] += 1
                continue
            except httpx.HTTPError as exc:
                self.answers[type(exc).__name__] += 1
                self.in_doubt += len(events)
                continue
            self.answers[str(response.status_code)] += 1
            if response.status_code == 202:
                self.acknowledged[name] += 100
            elif response.status_code >= 500:
                self.in_doubt += len(events)

    def total(self) -> int:
        return sum(self.acknowledged.values())

    def wait_for_more(self, n: int, timeout_s: float = 60) -> None:
        target = self.total() + n
        wait_for(
            lambda: self.total() >= target,
            timeout_s,
            f"{n} more acknowledged events (answers so far: {self.answers})",
        )

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(30)


class CheckingIn:
    """Checks a canary in every 0.3 s from a thread, through the same restarts."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.ok = 0
        self.stopped_at = float("inf")
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopped.wait(0.3):
            try:
                if httpx.get(f"{self.url}/checkin/{self.token}", timeout=5).status_code == 200:
                    self.ok += 1
            except httpx.HTTPError:
                pass

    def stop(self) -> None:
        if not self.stopped.is_set():
            self.stopped_at = time.time()
        self.stopped.set()
        self.thread.join(10)


def _admin(up: Up) -> httpx.Client:
    return httpx.Client(
        base_url=up.url, headers={"Authorization": f"Bearer {up.admin_token}"}, timeout=15
    )


def key_and_channel(admin: httpx.Client, hook: HttpReceiver) -> tuple[str, str]:
    """A key without a practical rate limit, and a webhook channel to the receiver's /alerts."""
    key = admin.post(
        "/api/v1/admin/keys",
        json={"name": "load", "rate_per_minute": MAX_RATE_PER_MINUTE, "burst": MAX_BURST},
    ).json()["key"]
    channel = admin.post(
        "/api/v1/admin/channels",
        json={"name": "hook", "kind": "webhook", "url": hook.url("/alerts")},
    ).json()["id"]
    return key, channel


def _kill_and_wait_for_restart(up: Up, role: str) -> None:
    victim = up.pids(role)[0]
    before = set(up.pids(role))
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: len(set(up.pids(role)) - before) >= 1 and victim not in up.pids(role),
        60,
        f"the supervisor to restart the {role}",
    )
    assert any(f"{role}" in line and "restarting it" in line for line in up.lines), up.lines[-20:]


def _series(admin: httpx.Client, name: str, source: str) -> list[tuple[str, int, float]]:
    """Hourly counts and sums of `name` over whole hours around now: from the rollups
    alone with source=rollups (every bound is a whole hour), or from raw events."""
    hour = int(time.time()) // 3600 * 3600
    answer = admin.get(
        "/api/v1/query/series",
        params={
            "name": name,
            "from": str(hour - 2 * 3600),
            "to": str(hour + 3600),
            "interval": "1h",
            "source": source,
        },
    )
    assert answer.status_code == 200, answer.text
    return [(p["t"], p["count"], p["value_sum"]) for p in answer.json()["points"]]


def _stored_total(admin: httpx.Client, *names: str) -> int:
    return sum(c for name in names or NAMES for _, c, _ in _series(admin, name, "events"))


def assert_stored_and_rolled_up(admin: httpx.Client, load: Load) -> None:
    """Everything acknowledged is queryable; the rollups agree with raw events."""
    wait_for(
        lambda: all(_stored_total(admin, n) >= load.acknowledged[n] for n in NAMES),
        120,
        "every acknowledged event to be stored",
    )
    for name in NAMES:
        wait_for(
            lambda name=name: _series(admin, name, "rollups") == _series(admin, name, "events"),
            60,
            f"the rollups of {name} to equal its raw events",
        )


def assert_canaries(admin: httpx.Client, hook: HttpReceiver, silent: str, steady: str) -> None:
    """The silent canary is down, with its alert; the steady one is not."""
    wait_for(
        lambda: [r for r in hook.requests if r.json().get("canary", {}).get("id") == silent],
        60,
        "the silent canary's alert",
    )

    # The notifier sends the alert as the worker flips; the store writes the flip a moment later
    # (and later still after its own kill -9), so the listing shows it within a deadline.
    def statuses() -> dict[str, str]:
        listed = admin.get("/api/v1/admin/canaries").json()["canaries"]
        return {c["id"]: c["status"] for c in listed}

    wait_for(lambda: statuses()[silent] == "down", 30, "the silent canary listed as down")
    assert statuses()[steady] in ("up", "late")


def _assert_stored_once(data_dir: Path, acknowledged: int, in_doubt: int) -> None:
    """Every acknowledged event is in ClickHouse once; anything more is from requests that
    got no 202 (see the module's docstring)."""
    ((count, distinct),) = clickhouse_facts(
        data_dir,
        f"SELECT count(), uniqExact(event_id) FROM events WHERE startsWith(name, '{PREFIX}')",
    )
    assert count == distinct, "an event stored twice"
    assert acknowledged <= count <= acknowledged + in_doubt, (count, acknowledged, in_doubt)


def test_kill_9_of_the_worker_an_api_process_and_the_store_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    with HttpReceiver() as hook:
        up = Up(tmp_path / "data", free_port(), env=ENV, args=("--api-workers", "2"))
        try:
            up.wait_ready()
            admin = _admin(up)
            key, channel = key_and_channel(admin, hook)
            steady, silent = (
                admin.post(
                    "/api/v1/admin/canaries",
                    json={"name": name, "interval_seconds": 2, "channels": [channel]},
                ).json()
                for name in ("steady", "silent")
            )
            checking = CheckingIn(up.url, steady["token"])  # until the end of the test
            assert httpx.get(f"{up.url}/checkin/{silent['token']}").status_code == 200
            load = Load(up.url, key)
            try:
                load.wait_for_more(5_000)
                for role in ("worker", "api", "store"):
                    _kill_and_wait_for_restart(up, role)
                    load.wait_for_more(5_000)
            finally:
                load.stop()
            assert load.answers["202"] > 0

            assert_stored_and_rolled_up(admin, load)
            # The silent canary went down once, with one alert; the steady one stayed up.
            assert_canaries(admin, hook, silent["id"], steady["id"])
            checking.stop()
            assert checking.ok > 0
        finally:
            checking.stop()
            assert up.stop() == 0
        deliveries = Counter(
            r.headers["x-coalmine-delivery"] for r in hook.requests if r.path == "/alerts"
        )
        down_alerts = [
            r for r in hook.requests if r.json().get("canary", {}).get("id") == silent["id"]
        ]
        assert len({r.headers["x-coalmine-delivery"] for r in down_alerts}) == 1, deliveries
        assert all(r.json()["event"] == "canary.down" for r in down_alerts)
        # No flip of the steady canary while it was checking in: its check-ins never stopped
        # for longer than its interval, kills included (a restarted worker resumes from its
        # table). Once the test stops checking in, the worker, still running while the service
        # stops, may rightly call it down.
        assert not [
            r
            for r in hook.requests
            if r.json().get("canary", {}).get("id") == steady["id"]
            and datetime.fromisoformat(r.json()["at"]).timestamp() <= checking.stopped_at
        ]
    _assert_stored_once(tmp_path / "data", load.total(), load.in_doubt)


def test_a_broker_restart_answers_503_meanwhile_and_recovers_by_itself(tmp_path: Path) -> None:
    up = Up(tmp_path / "data", free_port(), env=ENV)
    try:
        up.wait_ready()
        admin = _admin(up)
        key = admin.post(
            "/api/v1/admin/keys",
            json={"name": "faults", "rate_per_minute": MAX_RATE_PER_MINUTE, "burst": MAX_BURST},
        ).json()["key"]
        canary = admin.post(
            "/api/v1/admin/canaries", json={"name": "kept", "interval_seconds": 3600}
        ).json()
        load = Load(up.url, key)
        load.wait_for_more(2_000)
        load.stop()
        before = load.total()
        wait_for(lambda: _stored_total(admin) == before, 60, "the events acknowledged so far")

        # Frozen first, so that clients see the outage whatever the speed of the restart
        # (a broker back within the append timeout rightly turns waits into 202s), then killed.
        (broker,) = up.pids("broker")
        os.kill(broker, signal.SIGSTOP)
        load = Load(up.url, key)  # sends through the outage and the restart
        wait_for(lambda: load.answers["503"] > 0, 30, "a 503 while the log is away")
        assert load.total() == 0, "a 202 while the log is away"
        os.kill(broker, signal.SIGKILL)
        wait_for(lambda: broker not in up.pids("broker"), 10, "the broker to die")
        load.wait_for_more(2_000, timeout_s=90)  # the broker is back: 202s again
        load.stop()
        assert any("restarting it" in line and "broker" in line for line in up.lines)

        # Keys and canaries were written back onto the new log: a process started now
        # (a restarted API) knows them.
        _kill_and_wait_for_restart(up, "api")
        after_restart = Load(up.url, key)
        after_restart.wait_for_more(500, timeout_s=60)
        after_restart.stop()
        # Known again, never refused: a 503 at most while the store writes it back.
        checkin = f"{up.url}/checkin/{canary['token']}"
        answered = wait_for(
            lambda: (status := httpx.get(checkin).status_code) != 503 and status,
            30,
            "the check-in answered",
        )
        assert answered == 200

        expected = before + load.total() + after_restart.total()
        wait_for(lambda: _stored_total(admin) >= expected, 90, "every acknowledged event stored")
    finally:
        assert up.stop() == 0
    _assert_stored_once(tmp_path / "data", expected, load.in_doubt + after_restart.in_doubt)
