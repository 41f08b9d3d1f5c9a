"""queries.params: times and intervals from query parameters, always with an explicit `now`."""

from __future__ import annotations

import datetime as dt

import pytest

from queries.params import (
    QueryError,
    epoch_ms,
    iso,
    iso_ms,
    parse_duration,
    parse_limit,
    parse_time,
    parse_type,
    required,
    stored_range_ms,
    time_range,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 7, 2, 12, 0, tzinfo=UTC)
NOW_EPOCH = 1_782_993_600


# --- parse_time -----------------------------------------------------------------------------


def test_it_reads_iso_with_z() -> None:
    parsed = parse_time("2026-07-02T10:00:00Z", NOW, "from")

    assert parsed == dt.datetime(2026, 7, 2, 10, tzinfo=UTC)


def test_it_reads_iso_with_an_offset_and_returns_utc() -> None:
    parsed = parse_time("2026-07-02T10:00:00+02:00", NOW, "from")

    assert parsed == dt.datetime(2026, 7, 2, 8, tzinfo=UTC)
    assert parsed.utcoffset() == dt.timedelta(0)


def test_it_reads_iso_with_fractional_seconds() -> None:
    parsed = parse_time("2026-07-02T10:00:00.250-05:30", NOW, "from")

    assert parsed == dt.datetime(2026, 7, 2, 15, 30, 0, 250_000, tzinfo=UTC)


def test_it_reads_epoch_seconds() -> None:
    assert parse_time(str(NOW_EPOCH), NOW, "from") == NOW


def test_it_reads_fractional_epoch_seconds() -> None:
    parsed = parse_time(f"{NOW_EPOCH}.5", NOW, "from")

    assert parsed == NOW + dt.timedelta(milliseconds=500)
    assert parsed.tzinfo is not None


def test_it_reads_now() -> None:
    assert parse_time("now", NOW, "to") == NOW


def test_it_ignores_surrounding_spaces() -> None:
    assert parse_time("  -1h ", NOW, "from") == NOW - dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("raw", "delta"),
    [
        ("-7d", dt.timedelta(days=7)),
        ("-15m", dt.timedelta(minutes=15)),
        ("-30s", dt.timedelta(seconds=30)),
        ("-24h", dt.timedelta(hours=24)),
        ("-2w", dt.timedelta(weeks=2)),
    ],
)
def test_it_reads_a_time_relative_to_now(raw: str, delta: dt.timedelta) -> None:
    assert parse_time(raw, NOW, "from") == NOW - delta


def test_it_refuses_an_iso_time_without_offset() -> None:
    with pytest.raises(QueryError, match="`from`.*offset"):
        parse_time("2026-07-02T10:00:00", NOW, "from")


def test_it_refuses_a_date_without_time_or_offset() -> None:
    with pytest.raises(QueryError):
        parse_time("2026-07-02", NOW, "from")


@pytest.mark.parametrize("raw", ["yesterday", "", "-7x", "+7d", "7d ago", "nan", "inf", "1e400"])
def test_it_refuses_garbage_naming_the_field(raw: str) -> None:
    with pytest.raises(QueryError, match="`to`"):
        parse_time(raw, NOW, "to")


# --- parse_duration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("60", 60), ("90s", 90), ("5m", 300), ("1h", 3600), ("1d", 86_400), ("1w", 604_800)],
)
def test_it_reads_a_duration_in_seconds(raw: str, seconds: int) -> None:
    assert parse_duration(raw, "interval") == seconds


@pytest.mark.parametrize("raw", ["0", "0m", "x", "-1m", "", "1.5h", "1y", "m", "5 m"])
def test_it_refuses_a_bad_duration_naming_the_field(raw: str) -> None:
    with pytest.raises(QueryError, match="`interval`"):
        parse_duration(raw, "interval")


# --- time_range -----------------------------------------------------------------------------


def test_it_defaults_the_range_to_default_from_until_now() -> None:
    assert time_range({}, NOW, "-24h") == (NOW - dt.timedelta(hours=24), NOW)


def test_it_reads_both_ends_of_a_range() -> None:
    start, end = time_range({"from": "-2h", "to": "-1h"}, NOW, "-24h")

    assert (start, end) == (NOW - dt.timedelta(hours=2), NOW - dt.timedelta(hours=1))


def test_it_treats_empty_parameters_as_absent() -> None:
    assert time_range({"from": "", "to": ""}, NOW, "-1h") == (NOW - dt.timedelta(hours=1), NOW)


def test_it_refuses_a_range_that_ends_where_it_starts() -> None:
    with pytest.raises(QueryError, match="before"):
        time_range({"from": "now", "to": "now"}, NOW, "-1h")


def test_it_refuses_a_range_that_ends_before_it_starts() -> None:
    with pytest.raises(QueryError, match="before"):
        time_range({"from": "-1h", "to": "-2h"}, NOW, "-24h")


def test_it_names_the_bad_end_of_a_range() -> None:
    with pytest.raises(QueryError, match="`to`"):
        time_range({"from": "-1h", "to": "later"}, NOW, "-24h")


# --- required, iso --------------------------------------------------------------------------


def test_it_requires_a_present_non_empty_parameter() -> None:
    assert required({"name": "signup"}, "name") == "signup"
    with pytest.raises(QueryError, match="`name`"):
        required({}, "name")
    with pytest.raises(QueryError, match="`name`"):
        required({"name": ""}, "name")


def test_it_writes_times_as_utc_iso_with_z() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))

    assert iso(dt.datetime(2026, 7, 2, 12, 0, tzinfo=paris)) == "2026-07-02T10:00:00Z"


@pytest.mark.parametrize(
    "raw",
    ["-1000000d", "-99999999999999w", "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"],
)
def test_it_refuses_a_time_out_of_range_with_a_query_error(raw: str) -> None:
    with pytest.raises(QueryError, match="`from`"):
        parse_time(raw, NOW, "from")


# --- parse_limit, parse_type ----------------------------------------------------------------


def test_it_defaults_an_absent_or_empty_limit() -> None:
    assert parse_limit({}, 10, 1000) == 10
    assert parse_limit({"limit": ""}, 10, 1000) == 10


@pytest.mark.parametrize("raw", ["1", "999", "1000"])
def test_it_reads_a_limit_within_bounds(raw: str) -> None:
    assert parse_limit({"limit": raw}, 10, 1000) == int(raw)


@pytest.mark.parametrize("raw", ["0", "1001", "-1", "ten", "1.5", "1e3"])
def test_it_refuses_a_limit_out_of_bounds_saying_which(raw: str) -> None:
    with pytest.raises(QueryError, match="`limit` must be a whole number from 1 to 1000"):
        parse_limit({"limit": raw}, 10, 1000)


def test_it_reads_an_optional_event_type() -> None:
    assert parse_type({}) is None
    assert parse_type({"type": ""}) is None
    assert parse_type({"type": "event"}) == "event"
    assert parse_type({"type": "error"}) == "error"
    with pytest.raises(QueryError, match="`type` must be event or error"):
        parse_type({"type": "errors"})


# --- epoch_ms, stored_range_ms, iso_ms ------------------------------------------------------


def test_it_rounds_a_time_up_to_the_next_millisecond() -> None:
    assert epoch_ms(NOW) == NOW_EPOCH * 1000
    assert epoch_ms(NOW + dt.timedelta(microseconds=1)) == NOW_EPOCH * 1000 + 1
    assert epoch_ms(NOW + dt.timedelta(microseconds=1000)) == NOW_EPOCH * 1000 + 1
    assert epoch_ms(NOW + dt.timedelta(microseconds=1001)) == NOW_EPOCH * 1000 + 2


def test_it_clips_a_range_to_the_times_an_event_can_have() -> None:
    before = dt.datetime(1960, 1, 1, tzinfo=UTC)
    after = dt.datetime(2200, 1, 1, tzinfo=UTC)

    assert stored_range_ms(before, NOW) == (0, NOW_EPOCH * 1000)
    assert stored_range_ms(NOW, after) == (NOW_EPOCH * 1000, 4_102_444_800_000)
    assert stored_range_ms(before, before) == (0, 0)


def test_it_writes_a_stored_time_with_milliseconds() -> None:
    assert iso_ms(NOW_EPOCH * 1000 + 5) == "2026-07-02T12:00:00.005Z"
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
