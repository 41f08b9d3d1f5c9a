"""domain.schedule and cron canaries in domain.canary_state: slots across DST changes and
month ends, "down" = the first slot after the last check-in plus grace, without I/O."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.canary_state import CanaryState, apply, deadline, evaluate, next_due_at, status_at
from domain.schedule import BadSchedule, check_schedule, explain, next_slot
from schemas.canaries import CanaryDefined, CheckIn

UTC = dt.UTC
PARIS = "Europe/Paris"
CANARY = "can_00000000000000cc"
GRACE = 600


def utc(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=UTC).timestamp()


def just_after(moment: float) -> float:
    return math.nextafter(moment, math.inf)


def cron_canary(
    created: float, schedule: str = "30 2 * * *", timezone: str | None = PARIS, **changes: Any
) -> CanaryState:
    definition = CanaryDefined(
        id=CANARY, name="nightly", token_hash="0" * 64, interval_s=0, grace_s=GRACE, channels=[],
        created_at=created, changed_at=created, schedule=schedule, timezone=timezone,
    )  # fmt: skip
    state = CanaryState(CANARY)
    assert apply(state, msgspec.structs.replace(definition, **changes)) is None
    return state


def ping(state: CanaryState, at: float, kind: str = "success", rid: str = "") -> Any:
    return apply(state, CheckIn(f"chk-{at!r}-{kind}", CANARY, kind, at, "", rid))  # type: ignore[arg-type]


# --- slots -----------------------------------------------------------------------------------
def test_it_runs_a_0230_paris_job_at_0300_on_the_spring_forward_day() -> None:
    # 2026-03-29: Paris goes from 02:00 CET to 03:00 CEST; 02:30 does not exist that night.
    after_saturday = utc(2026, 3, 28, 1, 31)  # 02:31 CET
    assert next_slot("30 2 * * *", PARIS, after_saturday) == utc(2026, 3, 29, 1, 0)  # 03:00 CEST
    # and the day after, 02:30 CEST again
    assert next_slot("30 2 * * *", PARIS, utc(2026, 3, 29, 1, 0)) == utc(2026, 3, 30, 0, 30)


def test_it_runs_a_0230_paris_job_once_on_the_fall_back_day() -> None:
    # 2026-10-25: 02:30 happens twice (CEST, then CET); cron runs the job at the first one.
    first = utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    assert next_slot("30 2 * * *", PARIS, utc(2026, 10, 24, 0, 31)) == first
    next_day = utc(2026, 10, 26, 1, 30)  # 02:30 CET
    assert next_slot("30 2 * * *", PARIS, first) == next_day
    # From between the two 02:30s, or from just before the second one: not again that night.
    assert next_slot("30 2 * * *", PARIS, utc(2026, 10, 25, 0, 31)) == next_day
    assert next_slot("30 2 * * *", PARIS, utc(2026, 10, 25, 1, 29)) == next_day


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 0 L * *", utc(2026, 1, 31, 0, 0, 1), utc(2026, 2, 28)),  # last day, not a leap year
        ("0 0 L * *", utc(2028, 1, 31, 0, 0, 1), utc(2028, 2, 29)),  # leap year
        ("0 0 L * *", utc(2026, 2, 28, 0, 0, 1), utc(2026, 3, 31)),
        ("0 9 31 * *", utc(2026, 1, 31, 9, 0, 1), utc(2026, 3, 31, 9)),  # February has no 31st
        ("0 9 30 * *", utc(2026, 1, 30, 9, 0, 1), utc(2026, 3, 30, 9)),
        ("0 0 LW * *", utc(2026, 5, 1), utc(2026, 5, 29)),  # 2026-05-31 is a Sunday
        ("0 0 * * 5L", utc(2026, 1, 1), utc(2026, 1, 30)),  # last Friday
        ("0 0 * * MON#2", utc(2026, 1, 1), utc(2026, 1, 12)),
        ("0 23 * * *", utc(2026, 12, 31, 23, 0, 1), utc(2027, 1, 1, 23)),  # year end
    ],
)
def test_it_finds_month_end_and_special_slots(
    expression: str, after: float, expected: float
) -> None:
    assert next_slot(expression, "UTC", after) == expected


def test_a_check_in_during_a_slots_second_counts_for_that_slot() -> None:
    assert next_slot("0 3 * * *", "UTC", utc(2026, 1, 1, 3) + 0.5) == utc(2026, 1, 2, 3)
    assert next_slot("0 3 * * *", "UTC", utc(2026, 1, 1, 3)) == utc(2026, 1, 2, 3)
    assert next_slot("0 3 * * *", "UTC", utc(2026, 1, 1, 3) - 0.5) == utc(2026, 1, 1, 3)


def test_it_takes_a_seconds_field() -> None:
    assert next_slot("*/10 * * * * *", "UTC", utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 0, 10)


@pytest.mark.parametrize(
    ("expression", "timezone", "says"),
    [
        ("0 3 * *", "UTC", "Wrong number of fields"),
        ("0 25 * * *", "UTC", "invalid cron expression"),
        ("0 0 30 2 *", "UTC", "invalid cron expression"),
        ("0 3 * * *", "Mars/Olympus", "unknown timezone"),
        ("0 3 * * *", "../etc/passwd", "unknown timezone"),
        ("0 3 * * *", "Europe", "unknown timezone"),  # a directory of the tz database
        ("0 3 * * *", "posixrules", "unknown timezone"),
        ("0 3 * * *", "x" * 300, "unknown timezone"),
    ],
)
def test_it_refuses_bad_schedules_saying_why(expression: str, timezone: str, says: str) -> None:
    with pytest.raises(BadSchedule, match=says):
        check_schedule(expression, timezone)


def test_it_explains_a_schedule_in_english() -> None:
    assert explain("0 3 * * *") == "At 03:00 every day"
    assert "last day" in explain("0 0 L * *")


# --- cron canaries ---------------------------------------------------------------------------
def test_a_cron_canary_is_due_at_the_first_slot_after_its_last_check_in_plus_grace() -> None:
    created = utc(2026, 3, 27, 12)
    state = cron_canary(created)
    first_slot = utc(2026, 3, 28, 1, 30)  # 02:30 CET
    assert next_due_at(state) == first_slot
    assert deadline(state) == first_slot + GRACE
    assert ping(state, first_slot + 60) is None
    # The next slot is the spring-forward night's 03:00 CEST.
    slot = utc(2026, 3, 29, 1, 0)
    assert (next_due_at(state), deadline(state)) == (slot, slot + GRACE)
    assert status_at(state, slot + 1) == "late"
    assert evaluate(state, slot + GRACE) is None
    flip = evaluate(state, just_after(slot + GRACE))
    assert flip is not None and (flip.status, flip.reason) == ("down", "missed")


def test_a_ping_before_a_slot_does_not_count_for_it() -> None:
    # A job due at 02:30 that pinged at 02:29 is due again at the next 02:30, not now.
    state = cron_canary(utc(2026, 6, 1, 12))
    slot = utc(2026, 6, 2, 0, 30)
    assert ping(state, slot - 60) is None
    assert next_due_at(state) == slot
    assert evaluate(state, just_after(slot + GRACE)) is not None


def test_a_cron_canary_on_the_fall_back_day_is_not_due_twice() -> None:
    state = cron_canary(utc(2026, 10, 24, 12))
    assert ping(state, utc(2026, 10, 25, 0, 31)) is None  # just after the first 02:30
    assert deadline(state) == utc(2026, 10, 26, 1, 30) + GRACE
    assert evaluate(state, utc(2026, 10, 25, 1, 30) + GRACE + 1) is None  # the second 02:30


def test_a_cron_canary_without_timezone_is_utc() -> None:
    state = cron_canary(utc(2026, 1, 1, 12), "0 3 * * *", None)
    assert next_due_at(state) == utc(2026, 1, 2, 3)


def test_a_cron_canary_with_a_start_margin_must_start_within_it_then_finish_within_max_runtime() -> (
    None
):
    state = cron_canary(
        utc(2026, 1, 1, 12), "0 3 * * *", "UTC", start_margin_s=60, max_runtime_s=3600
    )
    slot = utc(2026, 1, 2, 3)
    assert deadline(state) == slot + 60  # not the grace: the run must have started by then
    flip = evaluate(state, slot + 61)
    assert flip is not None and flip.reason == "not_started"

    state = cron_canary(
        utc(2026, 1, 1, 12), "0 3 * * *", "UTC", start_margin_s=60, max_runtime_s=3600
    )
    assert ping(state, slot + 30, "start") is None
    assert deadline(state) == slot + 30 + 3600  # started in time: only the run limit now
    assert evaluate(state, slot + GRACE + 1) is None
    flip = evaluate(state, slot + 30 + 3601)
    assert flip is not None and flip.reason == "runtime_exceeded"


CRON_ALPHABET = st.sampled_from(list("0123456789*/-,LW#? ") + ["MON", "JAN", "L", "5L", "  "])


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(st.text(max_size=40), st.lists(CRON_ALPHABET, max_size=25).map("".join)),
    st.one_of(
        st.sampled_from(["UTC", "Europe/Paris", "Pacific/Chatham", ""]), st.text(max_size=30)
    ),
)
def test_any_text_is_a_schedule_or_refused_saying_why(expression: str, timezone: str) -> None:
    try:
        check_schedule(expression, timezone or None)
    except BadSchedule:
        return
    slot = next_slot(expression, timezone or None, utc(2026, 1, 1))
    assert slot is None or slot > utc(2026, 1, 1)
