"""A down canary makes noise by default (issue 18): channels from the CLI, a test send, the
flip in the service log at WARNING, `coalmine canaries watch` printing it live, and the
canaries' status on /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from typing import Any

from tests.conftest import wait_for
from tests.integration.harness import Stack
from tests.integration.receivers import HttpReceiver
from tests.integration.test_cli import coalmine
from tests.integration.test_operability import metric


def cli_json(stack: Stack, *args: str) -> Any:
    done = coalmine(stack, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_channels_from_the_cli_and_a_test_send(stack: Stack) -> None:
    name = f"hook-{uuid.uuid4().hex[:8]}"
    with HttpReceiver() as receiver:
        created = cli_json(stack, "channels", "create", name, "--webhook", receiver.url("/hook"))
        assert created["kind"] == "webhook" and created["secret"]
        listed = coalmine(stack, "channels", "list")
        assert created["id"] in listed.stdout and receiver.url("/hook") in listed.stdout
        assert created["secret"] not in listed.stdout

        tested = coalmine(stack, "channels", "test", created["id"])
        assert tested.returncode == 0 and tested.stdout.startswith("sent"), (
            tested.stdout + tested.stderr
        )
        [request] = receiver.wait_for_requests(1)
        assert request.headers["x-coalmine-event"] == "channel.test"
        assert request.json()["channel"]["id"] == created["id"]

    nowhere = cli_json(
        stack, "channels", "create", f"{name}-gone", "--webhook", "http://127.0.0.1:9/none"
    )
    failed = coalmine(stack, "channels", "test", nowhere["id"])
    assert failed.returncode == 1 and failed.stdout.startswith("FAILED"), failed.stdout
    slack = cli_json(
        stack, "channels", "create", f"{name}-slack", "--slack", "https://hooks.example/T/B/x"
    )
    assert slack["kind"] == "slack"
    needs_host = coalmine(stack, "channels", "create", f"{name}-mail", "--email", "ops@example.com")
    assert needs_host.returncode == 2 and "--smtp-host" in needs_host.stderr
    for channel in (nowhere, slack):
        assert coalmine(stack, "channels", "delete", channel["id"]).returncode == 0
    ids = [c["id"] for c in cli_json(stack, "channels", "list")]
    assert nowhere["id"] not in ids and slack["id"] not in ids


def test_a_flip_is_logged_watched_alerted_and_on_metrics(stack: Stack) -> None:
    env = {
        **os.environ,
        "COALMINE_ADMIN_TOKEN": stack.settings.admin_token,
        "COALMINE_PORT": str(stack.settings.port),
    }
    watcher = subprocess.Popen(
        [sys.executable, "-m", "coalmine", "canaries", "watch", "--every", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []

    def read() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    try:
        wait_for(
            lambda: any(line.startswith("watching") for line in lines), 30, "the watch to start"
        )
        with HttpReceiver() as receiver:
            channel = cli_json(
                stack,
                "channels",
                "create",
                f"noisy-{uuid.uuid4().hex[:8]}",
                "--webhook",
                receiver.url("/h"),
            )
            name = f"noisy-{uuid.uuid4().hex[:8]}"
            canary = cli_json(
                stack, "canaries", "create", name, "--interval", "1h", "--channel", channel["id"]
            )
            assert canary["channels"] == [channel["id"]]
            assert (
                stack.http().post(f"/checkin/{canary['token']}/fail", content=b"exit 3").status_code
                == 200
            )

            [alert] = receiver.wait_for_requests(1, 30)
            assert alert.headers["x-coalmine-event"] == "canary.down"
        # Created, then down: two looks, or one if the flip came first.
        shown = f"{name} ({canary['id']})  "
        wait_for(
            lambda: any(shown in line and "-> down" in line for line in lines),
            30,
            "the watch to print the flip",
        )
        assert any(shown + "(created) -> " in line for line in lines)

        def logged() -> list[dict[str, Any]]:
            text = (stack.root / "worker.log").read_text()
            return [
                j
                for line in text.splitlines()
                if line.startswith("{") and canary["id"] in (j := json.loads(line))["msg"]
            ]

        [flip] = wait_for(logged, 30, "the flip in the worker's log")
        assert (
            flip["level"] == "warning"
            and f"canary {name} ({canary['id']}) is DOWN: failed" == flip["msg"]
        )

        text = stack.http().get("/metrics").text
        assert metric(text, "coalmine_canary_status", canary_id=canary["id"], status="down") == 1
        assert metric(text, "coalmine_canary_status", canary_id=canary["id"], status="up") == 0
        assert metric(text, "coalmine_canaries", status="down") >= 1
    finally:
        watcher.terminate()
        watcher.wait(30)
    assert "Traceback" not in (watcher.stderr.read() if watcher.stderr else "")
