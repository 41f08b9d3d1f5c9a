"""The embedded log's rotation (coalmine.rotation) under `coalmine up`, as a user runs it:
rotations forced while clients send events and check in, with kill -9 of the worker and of
the store in the middle of one. Afterwards ClickHouse holds exactly the acknowledged events,
once; rollups equal raw counts; canaries flipped when they should, once, and not otherwise;
an error's quiet window, a key's spent bucket and canary deadlines crossed the rotations; and
the old generations' topics are gone from the broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from pathlib import Path

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from coalmine.broker import free_port
from tests.conftest import wait_for
from tests.integration.receivers import HttpReceiver
from tests.integration.test_faults import (
    ENV,
    NAMES,
    CheckingIn,
    Load,
    _admin,
    _assert_stored_once,
    _series,
    _stored_total,
    assert_canaries,
    assert_stored_and_rolled_up,
    key_and_channel,
)
from tests.integration.up import Up

ROTATED = "log rotated to generation"


def _rotate(up: Up, then: str | None = None, kill: str | None = None) -> int:
    """Ask `coalmine up` for a rotation; with `kill`, SIGKILL that role once the rotation has
    reached the step `then` names. Returns the generation rotated to."""
    done = sum(ROTATED in line for line in up.lines)
    os.kill(up.process.pid, signal.SIGUSR1)
    if kill is not None:
        assert then is not None
        wait_for(
            lambda: any(then in line for line in up.lines[-50:]), 60, f"the rotation to {then}"
        )
        victim = up.pids(kill)[0]
        os.kill(victim, signal.SIGKILL)
    wait_for(lambda: sum(ROTATED in line for line in up.lines) > done, 120, "the rotation to end")
    line = [line for line in up.lines if ROTATED in line][-1]
    return int(line.split(ROTATED)[1].split()[0])


def _topics(up: Up) -> list[str]:
    api = up.pids("api")[0]
    environ = Path(f"/proc/{api}/environ").read_bytes().split(b"\0")
    address = next(
        v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"COALMINE_KAFKA_BOOTSTRAP=")
    )

    async def listed() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=address)
        await admin.start()
        try:
            return sorted(await admin.list_topics())
        finally:
            await admin.close()

    return asyncio.run(listed())


def test_rotations_under_load_with_kill_9_lose_double_and_forget_nothing(tmp_path: Path) -> None:
    env = {**ENV, "COALMINE_LOG_ROTATE_MB": "0"}  # rotations only when the test asks
    with HttpReceiver() as hook:
        up = Up(tmp_path / "data", free_port(), env=env, args=("--api-workers", "2"))
        checking = None
        try:
            up.wait_ready()
            admin = _admin(up)
            key, channel = key_and_channel(admin, hook)
            # Errors alert every channel by default, once per quiet window (an hour).
            steady, silent = (
                admin.post(
                    "/api/v1/admin/canaries",
                    json={"name": name, "interval_seconds": interval, "channels": [channel]},
                ).json()
                for name, interval in (("steady", 3), ("silent", 20))
            )
            checking = CheckingIn(up.url, steady["token"])
            assert httpx.get(f"{up.url}/checkin/{silent['token']}").status_code == 200
            boom = {"events": [{"type": "error", "name": "rotation-boom", "message": "first"}]}
            headers = {"Authorization": f"Bearer {key}"}
            assert (
                httpx.post(f"{up.url}/api/v1/events", json=boom, headers=headers).status_code == 202
            )
            wait_for(lambda: any(r.json().get("name") == "rotation-boom" for r in hook.requests), 30,
                     "the first error's alert")  # fmt: skip
            load = Load(up.url, key)
            try:
                load.wait_for_more(3_000)
                assert _rotate(up) == 1
                load.wait_for_more(3_000)
                # kill -9 of the worker while it drains the old generation, then of the store
                # while both generations are live: each comes back and finishes its part.
                assert _rotate(up, then="the worker drains generation 1", kill="worker") == 2
                load.wait_for_more(3_000)
                assert _rotate(up, then="appending to generation 3", kill="store") == 3
                load.wait_for_more(3_000)
            finally:
                load.stop()
            # Within its quiet window the same error alerts no more, across the rotations.
            boom["events"][0]["message"] = "again"
            assert (
                httpx.post(f"{up.url}/api/v1/events", json=boom, headers=headers).status_code == 202
            )

            assert_stored_and_rolled_up(admin, load)
            # The silent canary's deadline crossed the rotations: it went down (once: below).
            assert_canaries(admin, hook, silent["id"], steady["id"])
            checking.stop()
            assert checking.ok > 0
            # Only the current generation is left on the broker.
            topics = _topics(up)
            assert "coalmine.g3.events" in topics
            assert not [
                t
                for t in topics
                if t.startswith(("coalmine.events", "coalmine.g1.", "coalmine.g2."))
            ], topics
            assert not [t for t in topics if t.startswith("coalmine-processors-")], topics
            # Every key and canary is still known to a fresh API process (kill -9 one).
            os.kill(up.pids("api")[0], signal.SIGKILL)
            wait_for(lambda: len(up.pids("api")) == 2, 60, "the API to be restarted")
            for _ in range(4):  # both processes answer, whichever takes the connection
                answer = httpx.post(
                    f"{up.url}/api/v1/events", json={"events": [{"type": "event", "name": "rotation-after"}]},
                    headers=headers, timeout=10,
                )  # fmt: skip
                assert answer.status_code in (202, 503), answer.text
            assert httpx.get(f"{up.url}/checkin/{steady['token']}", timeout=10).status_code == 200
        finally:
            if checking is not None:
                checking.stop()
            assert up.stop() == 0
        alerts = [r.json() for r in hook.requests if r.path == "/alerts"]
        by_canary = Counter(a.get("canary", {}).get("id") for a in alerts if "canary" in a)
        assert by_canary[silent["id"]] == 1, alerts
        assert by_canary[steady["id"]] == 0, alerts
        # Each error alerted once: no carried alert was sent again, no window reopened.
        errors = Counter(a["name"] for a in alerts if a.get("event") == "error.alert")
        assert errors == {name: 1 for name in ["rotation-boom", *NAMES]}, errors
    _assert_stored_once(tmp_path / "data", load.total(), load.in_doubt)


def test_a_spent_bucket_stays_spent_across_a_rotation(tmp_path: Path) -> None:
    """The rate-limit level is carried: a fresh API process after the rotation still refuses."""
    up = Up(tmp_path / "data", free_port(), env={"COALMINE_LOG_ROTATE_MB": "0"})
    try:
        up.wait_ready()
        admin = _admin(up)
        key = admin.post("/api/v1/admin/keys", json={"name": "small"}).json()["key"]  # 60/min, 120
        headers = {"Authorization": f"Bearer {key}"}
        batch = {"events": [{"type": "event", "name": "spent"}] * 60}
        answers = [
            httpx.post(f"{up.url}/api/v1/events", json=batch, headers=headers).status_code
            for _ in range(3)
        ]
        assert answers == [202, 202, 429], answers
        wait_for(lambda: _stored_total(admin, "spent") == 120, 60, "the spent events to be stored")
        assert _rotate(up) == 1
        os.kill(up.pids("api")[0], signal.SIGKILL)
        wait_for(
            lambda: httpx.get(f"{up.url}/healthz", timeout=2).status_code == 200
            if up.pids("api") else False,
            60,
            "a new API process",
        )  # fmt: skip
        # Only the carried snapshot tells this process that the bucket is (nearly) empty.
        answer = httpx.post(f"{up.url}/api/v1/events", json=batch, headers=headers)
        assert answer.status_code == 429, answer.text
        # The launcher's SIGUSR1 reached the worker as a move, not as mode's stack dump (whose
        # locals hold the admin token).
        assert not [line for line in up.lines if up.admin_token in line or "Stack for" in line]
    finally:
        assert up.stop() == 0


def test_a_drain_that_stops_moving_restarts_the_old_worker(tmp_path: Path) -> None:
    """A worker that will not drain its generation (here: frozen with SIGSTOP, as a worker
    stuck on a record Faust lost would be) is restarted after COALMINE_ROTATION_STALL_S, and
    the rotation ends with everything rolled up."""
    env = {"COALMINE_LOG_ROTATE_MB": "0", "COALMINE_ROTATION_STALL_S": "5"}
    up = Up(tmp_path / "data", free_port(), env=env)
    try:
        up.wait_ready()
        admin = _admin(up)
        key = admin.post("/api/v1/admin/keys", json={"name": "stall"}).json()["key"]
        headers = {"Authorization": f"Bearer {key}"}
        frozen = up.pids("worker")[0]
        os.kill(frozen, signal.SIGSTOP)  # it reads nothing from here on
        batch = {"events": [{"type": "event", "name": "stalled"}] * 50}
        for _ in range(2):
            answer = httpx.post(f"{up.url}/api/v1/events", json=batch, headers=headers)
            assert answer.status_code == 202, answer.text
        assert _rotate(up) == 1
        assert any("has not moved on generation 0" in line for line in up.lines), up.lines[-20:]
        assert frozen not in up.pids("worker")
        # The restarted worker rolled the events up before the old generation was deleted.
        wait_for(lambda: _stored_total(admin, "stalled") == 100, 60, "the events to be stored")
        wait_for(
            lambda: sum(c for _, c, _ in _series(admin, "stalled", "rollups")) == 100,
            60,
            "the rollups to count every event",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(frozen, signal.SIGCONT)
        assert up.stop() == 0
