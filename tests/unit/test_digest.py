"""domain.digest_plan: period ends in a timezone (DST included), which digests the rules ask
for, and what a digest says from the rollup rows of its period."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from domain.digest_plan import build, period_end_at_or_before, plans, previous_end
from schemas.routing import DigestSchedule, RouteDefined

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def at(text: str, zone: dt.tzinfo = dt.UTC) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def test_a_daily_period_ends_at_its_local_time() -> None:
    nine = DigestSchedule("daily", "09:00", "UTC")
    assert period_end_at_or_before(nine, at("2026-07-02T10:00")) == at("2026-07-02T09:00")
    assert period_end_at_or_before(nine, at("2026-07-02T08:59")) == at("2026-07-01T09:00")
    assert period_end_at_or_before(nine, at("2026-07-02T09:00")) == at("2026-07-02T09:00")
    paris = DigestSchedule("daily", "09:00", "Europe/Paris")  # 07:00 UTC in summer
    assert period_end_at_or_before(paris, at("2026-07-02T08:00")) == at("2026-07-02T07:00")


def test_a_daily_period_across_dst_is_23_or_25_hours() -> None:
    paris = DigestSchedule("daily", "09:00", "Europe/Paris")
    spring = at("2026-03-29T09:00", PARIS)  # clocks went forward at 02:00 that day
    assert spring - previous_end(paris, spring) == 23 * 3600
    autumn = at("2026-10-25T09:00", PARIS)  # and back at 03:00 that day
    assert autumn - previous_end(paris, autumn) == 25 * 3600
    assert period_end_at_or_before(paris, autumn + 1) == autumn


def test_an_hourly_period_ends_at_its_minute_of_every_local_hour() -> None:
    hourly = DigestSchedule("hourly", "00:15", "Asia/Kolkata")  # UTC+05:30: :45 in UTC
    end = period_end_at_or_before(hourly, at("2026-07-02T10:50"))
    assert end == at("2026-07-02T10:45") and previous_end(hourly, end) == at("2026-07-02T09:45")
    assert period_end_at_or_before(hourly, at("2026-07-02T10:40")) == at("2026-07-02T09:45")


def rule(id_: str, name: str, mode: str, digest: DigestSchedule | None) -> RouteDefined:
    return RouteDefined(id_, "any", name, ["chn_x"], mode, 1.0, 1.0, digest=digest)  # type: ignore[arg-type]


HOURLY = DigestSchedule("hourly", "00:00", "UTC")
DAILY = DigestSchedule()


def test_the_rules_ask_for_the_default_digest_and_one_per_digest_rule() -> None:
    rules = [
        rule("r1", "a.*", "digest", HOURLY),
        rule("r2", "b", "silent", HOURLY),
        rule("r3", "c", "immediate", None),
    ]
    assert [(p.key, p.schedule, p.channels) for p in plans(rules, DAILY)] == [
        ("default", DAILY, ()),
        ("r1", HOURLY, ("chn_x",)),
    ]


START, END = 1_000_000.0, 1_086_400.0
ROWS = [
    # type, name, key, count, previous, first seen, last error at, last message
    ["event", "page.view", "k1", 70, 100, 5.0, 0.0, ""],
    ["event", "page.view", "k2", 30, 0, 5.0, 0.0, ""],
    ["error", "db.timeout", "k1", 3, 0, START + 60, START + 900, "latest"],
    ["error", "db.timeout", "k2", 1, 0, START + 30, START + 100, "older"],
    ["event", "gone.quiet", "k1", 0, 12, 5.0, 0.0, ""],
    ["event", "a.hourly", "k1", 9, 0, 5.0, 0.0, ""],
    ["event", "muted", "k1", 4, 0, 5.0, 0.0, ""],
]


def test_a_digest_sums_keys_compares_with_the_period_before_and_keeps_the_last_error() -> None:
    rules = [rule("r1", "a.*", "digest", HOURLY), rule("r2", "muted", "silent", None)]
    default = plans(rules, DAILY)[0]
    digest = build(default, START, END, ROWS, rules, DAILY)
    assert digest is not None and digest.id == f"digest:default:{int(END)}"
    assert [(line.name, line.count, line.previous, line.first_seen) for line in digest.lines] == [
        ("page.view", 100, 100, False),
        ("db.timeout", 4, 0, True),
        ("gone.quiet", 0, 12, False),
    ]
    assert [(e.name, e.count, e.last_seen, e.last_message) for e in digest.errors] == [
        ("db.timeout", 4, START + 900, "latest")
    ]
    hourly = build(plans(rules, DAILY)[1], START, END, ROWS, rules, DAILY)
    assert (
        hourly is not None
        and [line.name for line in hourly.lines] == ["a.hourly"]
        and hourly.channels == ["chn_x"]
    )


def test_nothing_happened_means_no_digest() -> None:
    rules = [rule("r1", "*", "silent", None)]
    assert build(plans([], DAILY)[0], START, END, ROWS, rules, DAILY) is None
    assert build(plans([], DAILY)[0], START, END, [], [], DAILY) is None
