"""coalmine.hc_import: a Healthchecks API v3 check as the admin API body that re-creates it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coalmine.hc_import import ExportUnreadable, canary_spec, read_export

CODE = "0f2c9a6e-5d1b-4c2a-9e8f-7a6b5c4d3e2f"


def test_a_simple_check_keeps_its_uuid_timeout_and_grace() -> None:
    check = {"name": "Backups", "slug": "backups", "timeout": 86400, "grace": 3600, "desc": "nightly",
             "ping_url": f"https://hc-ping.com/{CODE}", "status": "up"}  # fmt: skip
    assert canary_spec(check, ["chn_a"]) == {
        "name": "Backups", "interval_seconds": 86400, "grace_seconds": 3600, "channels": ["chn_a"], "token": CODE,
    }  # fmt: skip


def test_a_cron_check_becomes_a_cron_canary_with_its_timezone_and_own_slug() -> None:
    check = {
        "name": "DB dump",
        "slug": "dump",
        "schedule": "30 2 * * *",
        "tz": "Europe/Paris",
        "grace": 600,
        "uuid": CODE,
    }
    spec = canary_spec(check, [])
    assert isinstance(spec, dict)
    assert (spec["schedule"], spec["timezone"], spec["slug"], spec["token"]) == (
        "30 2 * * *",
        "Europe/Paris",
        "dump",
        CODE,
    )
    assert "interval_seconds" not in spec


def test_a_read_only_export_has_no_uuid_and_gets_a_new_token() -> None:
    spec = canary_spec({"name": "x", "timeout": 60, "grace": 60, "unique_key": "a" * 40}, [])
    assert isinstance(spec, dict) and "token" not in spec


def test_it_skips_what_it_cannot_import_saying_why() -> None:
    assert "OnCalendar" in str(
        canary_spec({"name": "o", "schedule": "Mon *-*-* 09:00", "tz": "UTC"}, [])
    )
    assert "without a name" in str(canary_spec({"timeout": 60}, []))


def test_it_reads_an_export_or_says_what_it_expected(tmp_path: Path) -> None:
    good = tmp_path / "checks.json"
    good.write_text(json.dumps({"checks": [{"name": "a", "timeout": 60}]}))
    assert read_export(good) == [{"name": "a", "timeout": 60}]
    bad = tmp_path / "bad.json"
    bad.write_text('{"check": 1}')
    with pytest.raises(ExportUnreadable, match="GET /api/v3/checks/"):
        read_export(bad)
