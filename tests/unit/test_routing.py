"""domain.routing_rules and the error router's pure part: which rule decides, when an
occurrence alerts, and the alerts a batch raises."""

from __future__ import annotations

import datetime as dt

from domain.routing_rules import decide, opens_window, ordered, too_late_to_alert
from processors.agents.error_router import RoutedBatch, RoutedEvent, alerts_of, window_key
from schemas.ids import event_id
from schemas.routing import DigestSchedule, RouteDefined

DAILY = DigestSchedule()
NOW = 1_800_000_000.0


def rule(
    id_: str, match_type: str, name: str, mode: str, priority: int = 100, **more: object
) -> RouteDefined:
    return RouteDefined(
        id_,
        match_type,
        name,
        ["chn_a"],
        mode,
        created_at=1.0,
        changed_at=1.0,
        priority=priority,
        **more,
    )  # type: ignore[arg-type]


def test_without_rules_errors_alert_at_once_and_events_wait_for_the_daily_digest() -> None:
    error = decide([], "error", "db.timeout", "k", DAILY)
    assert (error.mode, error.route_id, error.every_channel, error.digest) == (
        "immediate",
        None,
        True,
        DAILY,
    )
    event = decide([], "event", "page.view", "k", DAILY)
    assert (event.mode, event.digest) == ("digest", DAILY)


def test_the_first_matching_rule_by_priority_decides() -> None:
    rules = ordered(
        [
            rule("late", "any", "*", "silent", priority=200),
            rule("pay", "error", "payment.*", "immediate", priority=10),
            rule("key", "error", "*", "digest", priority=50, key_id="k2", digest=DAILY),
        ]
    )
    assert decide(rules, "error", "payment.failed", "k2", DAILY).route_id == "pay"
    assert decide(rules, "error", "db.timeout", "k2", DAILY).route_id == "key"
    assert decide(rules, "error", "db.timeout", "k1", DAILY).mode == "silent"
    assert decide(rules, "event", "payment.done", "k1", DAILY).route_id == "late"  # type differs


def test_globs_are_fnmatch_and_case_sensitive() -> None:
    rules = [rule("r", "any", "job.[ab]?", "silent")]
    assert decide(rules, "event", "job.a1", "k", DAILY).route_id == "r"
    assert decide(rules, "event", "job.c1", "k", DAILY).route_id is None
    assert decide(rules, "event", "JOB.a1", "k", DAILY).route_id is None


def test_an_occurrence_alerts_when_it_opens_a_window() -> None:
    assert opens_window(None, NOW, 3600)
    assert not opens_window(NOW, NOW + 3599, 3600)
    assert opens_window(NOW, NOW + 3600, 3600)
    assert too_late_to_alert(NOW - 3601, NOW, 3600) and not too_late_to_alert(NOW - 3599, NOW, 3600)


def batch(*events: RoutedEvent, historical: bool = False, received_at: float = NOW) -> RoutedBatch:
    return RoutedBatch("0" * 30 + "80", "k", received_at, list(events), historical)


def error(name: str, ts: float | None = None, message: str = "boom") -> RoutedEvent:
    at = None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)
    return RoutedEvent("error", name, message, ts=at)


def test_a_batch_alerts_once_per_name_and_window() -> None:
    opened: dict[str, float] = {}
    raised = alerts_of(
        batch(error("a"), error("a"), error("b"), RoutedEvent("event", "v")), [], DAILY, opened.get
    )
    assert [(a.name, a.event_id) for a in raised] == [
        ("a", event_id("0" * 30 + "80", 0).hex),
        ("b", event_id("0" * 30 + "80", 2).hex),
    ]
    assert raised[0].id == f"alert:{raised[0].event_id}" and raised[0].channels == []
    opened = {window_key("k", "error", "a"): NOW - 10}
    assert [a.name for a in alerts_of(batch(error("a"), error("b")), [], DAILY, opened.get)] == [
        "b"
    ]


def test_history_never_alerts() -> None:
    assert alerts_of(batch(error("a"), historical=True), [], DAILY, {}.get) == []
    assert alerts_of(batch(error("a", ts=NOW - 7200)), [], DAILY, {}.get) == []
    assert len(alerts_of(batch(error("a", ts=NOW - 60)), [], DAILY, {}.get)) == 1


def test_rules_silence_errors_and_make_events_loud() -> None:
    rules = ordered(
        [rule("quiet", "error", "noisy.*", "silent"), rule("loud", "event", "deploy", "immediate")]
    )
    raised = alerts_of(
        batch(error("noisy.x"), RoutedEvent("event", "deploy"), RoutedEvent("event", "view")),
        rules,
        DAILY,
        {}.get,
    )
    assert [(a.name, a.event_type, a.route_id, a.channels) for a in raised] == [
        ("deploy", "event", "loud", ["chn_a"])
    ]
