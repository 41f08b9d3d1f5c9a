"""The pure parts of the quiet-time APIs: a window request made into its record (or refused
saying why), a snooze URL taken apart, badge bodies."""

from __future__ import annotations

from typing import Any

import pytest

from domain.badges import as_json, as_shields, as_svg, overall
from ingest_api.admin_quiet import CreateWindow, window_record
from ingest_api.ping import PingPath

NOW = 1_772_450_000.0
TOKEN = "A" * 32
KEY = "k" * 22


def test_a_window_for_minutes_from_now() -> None:
    record = window_record(CreateWindow(tags=["db", "db"], minutes=30, created_by="ana"), NOW)
    assert (record.starts_at, record.ends_at, record.tags) == (NOW, NOW + 1800, ["db"])
    assert record.id.startswith("win_") and record.created_by == "ana"


def test_an_open_ended_and_a_recurring_window() -> None:
    assert window_record(CreateWindow(everything=True), NOW).ends_at is None
    weekly = CreateWindow(
        canaries=["can_a"], schedule="0 2 * * SUN", timezone="Europe/Paris", duration_seconds=7200
    )
    record = window_record(weekly, NOW)
    assert (record.schedule, record.duration_s, record.ends_at) == ("0 2 * * SUN", 7200, None)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({}, "what it covers"),
        ({"everything": True, "ends_at": "2026-01-01T00:00:00Z", "minutes": 5}, "not both"),
        ({"everything": True, "starts_at": "yesterday"}, "ISO 8601"),
        ({"everything": True, "starts_at": "9999-12-31T23:59:59Z", "minutes": 5}, "ISO 8601"),
        ({"everything": True, "ends_at": "2020-01-01T00:00:00Z"}, "after `starts_at`"),
        ({"everything": True, "schedule": "0 2 * * *"}, "both `schedule` and `duration"),
        ({"everything": True, "schedule": "0 25 * * *", "duration_seconds": 60}, "invalid cron"),
        ({"everything": True, "timezone": "UTC"}, "goes with a `schedule`"),
    ],
)
def test_a_window_request_is_refused_saying_why(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("`", ".").replace("(", ".")):
        window_record(CreateWindow(**fields), NOW)


def test_snooze_is_a_signal_of_a_token_url_and_of_a_slug_url() -> None:
    by_token, by_slug = PingPath(f"/ping/{TOKEN}/snooze"), PingPath(f"/ping/{KEY}/backup/snooze")
    assert by_token.snooze and by_token.token == TOKEN and by_token.problem is None
    assert by_slug.snooze and by_slug.slug == "backup"
    assert not PingPath(f"/ping/{TOKEN}/fail").snooze
    assert PingPath(f"/ping/{TOKEN}/snooze/more").problem == (404, "not found")


def test_a_badge_shows_the_worst_status_and_the_counts() -> None:
    assert overall(["up", "new", "paused", "maintenance"]) == (
        "up", {"total": 4, "late": 0, "down": 0},
    )  # fmt: skip
    assert overall(["up", "late"])[0] == "late"
    status, counts = overall(["late", "down", "up"])
    assert (status, counts) == ("down", {"total": 3, "late": 1, "down": 1})
    assert as_json(status, counts)["status"] == "down"
    assert as_shields("db", "late") == {
        "schemaVersion": 1, "label": "db", "message": "late", "color": "orange",
    }  # fmt: skip
    svg = as_svg("<db>", "up")
    assert svg.startswith("<svg") and "&lt;db&gt;" in svg and "<db>" not in svg
