"""The CLI for cron canaries against a running service: create with --schedule/--tz (its
English shown), list with the schedule and next slot, `query runs`, `import-healthchecks`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.conftest import wait_for
from tests.integration.harness import Stack
from tests.integration.test_cli import coalmine


def test_it_creates_a_cron_canary_explains_it_and_lists_its_next_slot(stack: Stack) -> None:
    name = f"cli-cron-{uuid.uuid4().hex[:8]}"
    made = coalmine(stack, "canaries", "create", name, "--schedule", "0 3 * * *", "--tz", "Europe/Paris",
                    "--grace", "10m", "--failure-threshold", "2", "--failure-rate", "3/10")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "schedule: 0 3 * * * (At 03:00 every day, Europe/Paris)" in made.stdout
    assert "/ping/" in made.stdout and "/checkin/" in made.stdout
    listed = coalmine(stack, "canaries", "list")
    (line,) = [row for row in listed.stdout.splitlines() if name in row]
    assert "0 3 * * * Europe/Paris" in line
    as_json = {
        c["name"]: c for c in json.loads(coalmine(stack, "canaries", "list", "--json").stdout)
    }
    assert as_json[name]["failure_rate"] == {"failures": 3, "runs": 10}
    assert as_json[name]["next_due_at"] is not None
    both = coalmine(stack, "canaries", "create", "x", "--schedule", "0 3 * * *", "--interval", "1h")
    assert both.returncode == 2 and "not allowed with" in both.stderr
    bad = coalmine(stack, "canaries", "create", f"{name}-bad", "--schedule", "0 3 * *")
    assert bad.returncode == 1 and "Wrong number of fields" in bad.stderr


def test_it_prints_a_canarys_runs_by_name(stack: Stack) -> None:
    name = f"cli-runs-{uuid.uuid4().hex[:8]}"
    made = json.loads(
        coalmine(stack, "canaries", "create", name, "--interval", "1h", "--json").stdout
    )
    ping = stack.http()
    for path in ("/start", "", "/start", "/fail"):
        assert ping.get(f"/ping/{made['token']}{path}").status_code == 200
    runs = wait_for(
        lambda: (
            (r := json.loads(coalmine(stack, "query", "runs", name, "--json").stdout))["summary"][
                "runs"
            ]
            == 2
            and r
        ),
        30,
        "two runs stored",
    )
    assert [r["outcome"] for r in runs["runs"]] == ["success", "fail"]
    shown = coalmine(stack, "query", "runs", name)
    assert shown.returncode == 0, shown.stderr
    assert "2 finished, 1 failed" in shown.stdout and "fail" in shown.stdout
    assert coalmine(stack, "query", "runs", "no-such-canary").returncode == 1


def test_it_imports_a_healthchecks_export_keeping_uuids(stack: Stack, tmp_path: Path) -> None:
    code = str(uuid.uuid4())
    stem = uuid.uuid4().hex[:8]
    export = {"checks": [
        {"name": f"hc-backups-{stem}", "slug": f"backups-{stem}", "timeout": 86400, "grace": 3600,
         "ping_url": f"https://hc-ping.com/{code}", "status": "paused", "desc": "nightly"},
        {"name": f"hc-dump-{stem}", "schedule": "30 2 * * *", "tz": "Europe/Paris", "grace": 600,
         "unique_key": "f" * 40},
        {"name": f"hc-oncal-{stem}", "schedule": "Mon *-*-* 09:00", "tz": "UTC", "grace": 60},
    ]}  # fmt: skip
    path = tmp_path / "checks.json"
    path.write_text(json.dumps(export))
    done = coalmine(stack, "import-healthchecks", str(path))
    assert done.returncode == 0, done.stderr
    assert f"/ping/{code} (its Healthchecks UUID)" in done.stdout
    assert "(a new token: update the job)" in done.stdout
    assert "OnCalendar" in done.stdout and "2 of 3 check(s) imported" in done.stdout
    assert stack.http().get(f"/ping/{code}").text == "OK"
    canaries = {
        c["name"]: c for c in stack.admin().get("/api/v1/admin/canaries").json()["canaries"]
    }
    backups, dump = canaries[f"hc-backups-{stem}"], canaries[f"hc-dump-{stem}"]
    assert (backups["interval_seconds"], backups["grace_seconds"], backups["status"], backups["slug"]) == (
        86400, 3600, "paused", f"backups-{stem}",
    )  # fmt: skip
    assert (dump["schedule"], dump["timezone"]) == ("30 2 * * *", "Europe/Paris")
    again = coalmine(stack, "import-healthchecks", str(path))  # run again: nothing doubled
    assert again.returncode == 0
    assert len([line for line in again.stdout.splitlines() if line.startswith("exists ")]) == 2
