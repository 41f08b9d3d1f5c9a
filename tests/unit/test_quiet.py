"""domain/quiet.py and domain/holds.py: maintenance windows, silences and dependencies as pure
functions of explicit times. Boundaries are checked on both sides."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest

from domain.canary_state import CanaryState, apply, deadline, status_at
from domain.holds import judge, judged_deadline, remember_holds, settle
from domain.quiet import FOREVER, next_opening, open_until, quiet_until, silence_of, window_now
from domain.store_rows import FLIP_COLUMNS, flip_rows
from schemas.canaries import CanaryDefined, CheckIn, Flip, StateRestored
from schemas.quiet import SilenceDefined, WindowDefined

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC).timestamp()  # a Monday, 12:00 UTC
INTERVAL, GRACE = 60, 30


def canary(id: str = "can_a", **changes: Any) -> CanaryDefined:
    base = CanaryDefined(
        id=id, name=f"job-{id}", token_hash="0" * 64, interval_s=INTERVAL, grace_s=GRACE,
        channels=["chn_a"], created_at=T0, changed_at=T0,
    )  # fmt: skip
    return msgspec.structs.replace(base, **changes)


def window(**fields: Any) -> WindowDefined:
    base = WindowDefined(id="win_1", starts_at=T0, created_at=T0, changed_at=T0, everything=True)
    return msgspec.structs.replace(base, **fields)


def state_of(definition: CanaryDefined, *checkins: float) -> CanaryState:
    state = CanaryState(definition.id)
    apply(state, definition)
    for at in checkins:
        apply(state, CheckIn(f"chk-{at}", definition.id, "success", at))
    return state


# --- windows ---------------------------------------------------------------------------------
def test_a_one_off_window_is_open_from_its_start_until_just_before_its_end() -> None:
    w = window(ends_at=T0 + 600)
    assert open_until(w, T0 - 0.001) is None
    assert open_until(w, T0) == T0 + 600
    assert open_until(w, T0 + 599.9) == T0 + 600
    assert open_until(w, T0 + 600) is None


def test_an_open_ended_window_is_open_for_ever_once_started() -> None:
    w = window()
    assert open_until(w, T0 - 1) is None
    assert open_until(w, T0 + 10**8) == FOREVER
    assert window_now(w, T0 + 5) == "open"


def test_a_recurring_window_opens_at_each_slot_for_its_duration_in_its_timezone() -> None:
    # 02:00 in Paris (UTC+1 in March) every day, for an hour.
    w = window(schedule="0 2 * * *", timezone="Europe/Paris", duration_s=3600)
    slot = dt.datetime(2026, 3, 3, 1, 0, tzinfo=dt.UTC).timestamp()
    assert open_until(w, slot - 1) is None
    assert open_until(w, slot) == slot + 3600
    assert open_until(w, slot + 3599) == slot + 3600
    assert open_until(w, slot + 3600) is None
    assert next_opening(w, slot - 100) == slot
    assert window_now(w, slot + 10) == "open"
    assert window_now(w, slot + 4000) == "scheduled"


def test_a_recurring_window_is_bounded_by_its_start_and_end() -> None:
    w = window(schedule="*/10 * * * *", duration_s=60, starts_at=T0 + 300, ends_at=T0 + 1230)
    assert open_until(w, T0 + 30) is None  # the 12:00 slot is before starts_at
    assert open_until(w, T0 + 600) == T0 + 660
    assert open_until(w, T0 + 1200) == T0 + 1230  # cut by ends_at
    assert open_until(w, T0 + 1800) is None
    assert window_now(w, T0 + 1800) == "ended"
    assert next_opening(w, T0 + 1800) is None


def test_a_window_covers_canaries_by_id_by_tag_or_all() -> None:
    a, b = canary("can_a", tags=["db"]), canary("can_b", tags=["web"])
    by_id = window(everything=False, canaries=["can_a"], ends_at=T0 + 60)
    by_tag = window(everything=False, tags=["web"], ends_at=T0 + 60)
    assert quiet_until([by_id], a, T0) == T0 + 60
    assert quiet_until([by_id], b, T0) == T0
    assert quiet_until([by_tag], b, T0) == T0 + 60
    assert quiet_until([by_tag], a, T0) == T0
    assert quiet_until([window(ends_at=T0 + 60)], b, T0) == T0 + 60


def test_overlapping_and_back_to_back_windows_chain() -> None:
    first = window(id="w1", ends_at=T0 + 100)
    second = window(id="w2", starts_at=T0 + 100, ends_at=T0 + 200)
    third = window(id="w3", starts_at=T0 + 150, ends_at=T0 + 300)
    assert quiet_until([first, second, third], canary(), T0 + 10) == T0 + 300
    assert quiet_until([first, third], canary(), T0 + 10) == T0 + 100  # a gap: not chained
    assert quiet_until([first, window(id="w4", starts_at=T0 + 50)], canary(), T0) == FOREVER


# --- deadlines in a window -------------------------------------------------------------------
def test_a_deadline_in_a_window_restarts_from_its_end_instead_of_going_down() -> None:
    state = state_of(canary(), T0)  # due at T0 + 90
    w = window(starts_at=T0 + 30, ends_at=T0 + 500)
    assert judged_deadline(state, [w]) == T0 + 500
    assert judge(state, T0 + 501, [w]) is None
    assert state.status == "up"
    assert deadline(state) == T0 + 500 + INTERVAL + GRACE  # a whole period after the window
    flip = judge(state, T0 + 500 + INTERVAL + GRACE + 1, [w])
    assert flip is not None and (flip.status, flip.reason) == ("down", "missed")


def test_a_deadline_outside_windows_is_judged_as_before() -> None:
    state = state_of(canary(), T0)
    w = window(starts_at=T0 + 91, ends_at=T0 + 500)  # opens just after the deadline
    assert judged_deadline(state, [w]) == T0 + 90
    flip = judge(state, T0 + 95, [w])
    assert flip is not None and flip.status == "down"


def test_an_open_ended_window_takes_the_deadline_away_until_it_is_ended() -> None:
    state = state_of(canary(), T0)
    w = window(starts_at=T0 + 10)
    assert judged_deadline(state, [w]) is None
    assert judge(state, T0 + 10_000, [w]) is None and state.status == "up"
    ended = msgspec.structs.replace(w, ends_at=T0 + 5000, changed_at=T0 + 5000)
    assert judged_deadline(state, [ended]) == T0 + 5000
    assert judge(state, T0 + 5001, [ended]) is None
    assert deadline(state) == T0 + 5000 + INTERVAL + GRACE


def test_a_cron_canary_is_due_at_its_first_slot_after_the_window() -> None:
    state = state_of(canary(interval_s=0, schedule="*/5 * * * *", grace_s=0), T0 + 1)
    w = window(starts_at=T0 + 60, ends_at=T0 + 320)  # covers the 12:05 slot
    assert judged_deadline(state, [w]) == T0 + 320
    assert judge(state, T0 + 321, [w]) is None
    assert deadline(state) == T0 + 600  # 12:10, not 12:05


def test_a_canary_over_events_counts_a_fresh_window_from_the_end() -> None:
    from schemas.canaries import EventsExpected

    state = state_of(canary(events=EventsExpected("job.done")))
    w = window(starts_at=T0 + 10, ends_at=T0 + 200)
    assert judge(state, T0 + 201, [w]) is None
    assert state.window_start == T0 + 200 and state.status == "new"


def test_a_run_in_progress_when_the_window_ends_is_given_up_on() -> None:
    state = state_of(canary(max_runtime_s=20), T0)
    apply(state, CheckIn("s", "can_a", "start", T0 + 5))
    w = window(starts_at=T0 + 10, ends_at=T0 + 100)
    assert judge(state, T0 + 101, [w]) is None
    assert state.started_at is None


# --- held flips ------------------------------------------------------------------------------
def flip(canary_id: str, status: str = "down", at: float = T0 + 100) -> Flip:
    return Flip(
        f"{canary_id}:{status}", canary_id, f"job-{canary_id}", status, "missed", at,  # type: ignore[arg-type]
        channels=["chn_a"],
    )  # fmt: skip


def states(*definitions: CanaryDefined, down: bool = True) -> dict[str, CanaryState]:
    result = {}
    for d in definitions:
        result[d.id] = state_of(d)
        result[d.id].status = "down" if down else "up"
    return result


def test_a_flip_in_a_window_is_held_and_its_recovery_too() -> None:
    d = canary()
    s = states(d)
    w = window(id="win_9", ends_at=T0 + 200)
    (held,) = settle([flip("can_a")], s, {}, [w])
    assert (held.held, held.channels) == ("maintenance win_9", [])
    remember_holds([held], s)
    s["can_a"].status = "up"
    (up,) = settle([flip("can_a", "up", at=T0 + 900)], s, {}, [w])  # after the window
    assert (up.held, up.channels) == ("maintenance win_9", [])
    remember_holds([up], s)
    assert s["can_a"].held == ""


def test_a_flip_outside_windows_is_sent() -> None:
    s = states(canary())
    (sent,) = settle([flip("can_a", at=T0 + 200)], s, {}, [window(ends_at=T0 + 200)])
    assert (sent.held, sent.channels) == ("", ["chn_a"])


def test_a_recovery_of_an_announced_down_is_sent_even_in_a_window() -> None:
    s = states(canary(), down=False)
    (up,) = settle([flip("can_a", "up")], s, {}, [window()])
    assert up.channels == ["chn_a"]


def test_a_child_of_a_down_parent_is_held_and_listed_in_the_parents_alert() -> None:
    parent = canary("can_db", tags=["db"])
    child = canary("can_app", depends_on=["can_db"])
    by_tag = canary("can_web", depends_on_tags=["db"])
    other = canary("can_x")
    s = states(parent, child, by_tag, other)
    flips = [flip("can_app"), flip("can_db"), flip("can_web"), flip("can_x")]
    app, db, web, x = settle(flips, s, {}, [])
    assert (app.held, app.channels) == ("depends on job-can_db", [])
    assert (web.held, web.channels) == ("depends on job-can_db", [])
    assert (db.held, db.channels, db.dependents) == ("", ["chn_a"], ["job-can_app", "job-can_web"])
    assert (x.held, x.channels, x.dependents) == ("", ["chn_a"], [])


def test_a_child_going_down_while_the_parent_is_down_already_is_held() -> None:
    parent, child = canary("can_db"), canary("can_app", depends_on=["can_db"])
    s = states(child)
    (app,) = settle([flip("can_app")], s, {"can_db": parent}, [])
    assert app.held == "depends on job-can_db"
    # The parent is up again: the child's next down alerts.
    (again,) = settle([flip("can_app")], s, {}, [])
    assert again.held == "" and again.channels == ["chn_a"]


def test_a_parent_lists_children_down_before_it() -> None:
    parent, child = canary("can_db"), canary("can_app", depends_on=["can_db"])
    (db,) = settle([flip("can_db")], states(parent), {"can_app": child}, [])
    assert db.dependents == ["job-can_app"] and db.held == ""


def test_a_canary_never_depends_on_itself() -> None:
    d = canary("can_a", tags=["t"], depends_on_tags=["t"])
    (f,) = settle([flip("can_a")], states(d), {}, [])
    assert f.held == "" and f.dependents == []


def test_status_in_a_window_is_shown_by_the_api_not_the_state() -> None:
    # The state machine knows nothing of windows: the API overlays "maintenance".
    assert status_at(state_of(canary(), T0), T0 + 10) == "up"


# --- silences --------------------------------------------------------------------------------
def silence(**fields: Any) -> SilenceDefined:
    base = SilenceDefined(
        id="sil_1", name="payment.*", starts_at=T0, ends_at=T0 + 3600, comment="deploy",
        created_by="ana", created_at=T0, changed_at=T0,
    )  # fmt: skip
    return msgspec.structs.replace(base, **fields)


@pytest.mark.parametrize(
    ("at", "name", "expected"),
    [
        (T0, "payment.failed", True),
        (T0 - 0.001, "payment.failed", False),
        (T0 + 3599, "payment.failed", True),
        (T0 + 3600, "payment.failed", False),
        (T0 + 10, "Payment.failed", False),  # case-sensitive, as routing rules
        (T0 + 10, "refund.failed", False),
    ],
)
def test_a_silence_matches_by_name_pattern_in_its_time(
    at: float, name: str, expected: bool
) -> None:
    assert (silence_of([silence()], "error", name, "key_1", at) is not None) is expected


def test_a_silence_narrowed_by_type_and_key() -> None:
    s = silence(match_type="error", key_id="key_1")
    assert silence_of([s], "error", "payment.x", "key_1", T0) is not None
    assert silence_of([s], "event", "payment.x", "key_1", T0) is None
    assert silence_of([s], "error", "payment.x", "key_2", T0) is None


def test_dependency_cycles_are_found_through_ids_and_tags() -> None:
    from domain.holds import dependency_cycle

    a = canary("can_a", tags=["front"], depends_on=["can_b"])
    b = canary("can_b", depends_on_tags=["front"])
    c = canary("can_c", depends_on=["can_a"])
    assert dependency_cycle([a, b, c]) in (
        ["job-can_a", "job-can_b", "job-can_a"],
        ["job-can_b", "job-can_a", "job-can_b"],
    )
    assert dependency_cycle([a, msgspec.structs.replace(b, depends_on_tags=[]), c]) is None
    assert dependency_cycle([canary("can_s", tags=["t"], depends_on_tags=["t"])]) is None


def test_a_held_down_and_its_recovery_in_one_batch_are_both_held() -> None:
    s = states(canary())
    down, up = settle([flip("can_a"), flip("can_a", "up", at=T0 + 101)], s, {}, [window()])
    assert down.held == up.held == "maintenance win_1"
    remember_holds([down, up], s)
    assert s["can_a"].held == ""


def test_a_held_down_restored_on_an_empty_log_keeps_its_recovery_held() -> None:
    """A restart of `coalmine up` writes the state back (StateRestored): a canary whose down
    was held must not announce a recovery nobody was told the down of."""
    s = {"can_a": CanaryState("can_a")}
    apply(s["can_a"], StateRestored("can_a", "down", T0, T0 - 50, held="depends on db"))
    apply(s["can_a"], canary())
    recovered = apply(s["can_a"], CheckIn("chk_1", "can_a", "success", T0 + 10))
    assert recovered is not None and recovered.status == "up"
    (up,) = settle([recovered], s, {}, [])
    assert (up.held, up.channels) == ("depends on db", [])


def test_a_restored_canary_that_is_up_has_nothing_held() -> None:
    state = CanaryState("can_a", held="maintenance win_1")
    apply(state, StateRestored("can_a", "up", T0, T0 - 50, held="maintenance win_1"))
    assert state.held == ""


def test_a_flips_row_records_why_it_was_held() -> None:
    held = msgspec.structs.replace(flip("can_a"), held="maintenance win_9", channels=[])
    (row,) = flip_rows(held)
    assert dict(zip(FLIP_COLUMNS, row))["held"] == "maintenance win_9"
