"""domain/canary_state.py: the dead man's switch as a pure state machine, fed records with
explicit times. Every boundary is checked on both sides (at the deadline, and just after)."""

from __future__ import annotations

import math
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.canary_state import (
    CanaryState,
    apply,
    deadline,
    evaluate,
    next_due_at,
    state_decoder,
    state_encoder,
    status_at,
)
from schemas.canaries import CanaryDefined, CanaryDeleted, CheckIn, Flip, StateRestored, Tick

CANARY = "can_0123456789abcdef"
CREATED = 1_750_000_000.0
INTERVAL = 60
GRACE = 30
MAX_RUNTIME = 20


def definition(**changes: Any) -> CanaryDefined:
    base = CanaryDefined(
        id=CANARY,
        name="nightly-backup",
        token_hash="0" * 64,
        interval_s=INTERVAL,
        grace_s=GRACE,
        channels=["chn_a", "chn_b"],
        created_at=CREATED,
        changed_at=CREATED,
    )
    return msgspec.structs.replace(base, **changes)


def checkin(
    at: float,
    kind: Literal["success", "start", "fail"] = "success",
    message: str = "",
    id: str | None = None,
) -> CheckIn:
    # By default the id depends only on what the check-in is: a replay is the same record.
    return CheckIn(id or f"chk-{kind}-{at!r}", CANARY, kind, at, message)


def canary(*records: Any, **changes: Any) -> CanaryState:
    """A canary defined at CREATED, then fed `records`, none of which may flip it."""
    state = CanaryState(CANARY)
    for record in (definition(**changes), *records):
        assert apply(state, record) is None
    return state


def just_after(moment: float) -> float:
    return math.nextafter(moment, math.inf)


def encoded(state: CanaryState) -> bytes:
    return state_encoder.encode(state)


# --- missed check-ins ----------------------------------------------------------------------
def test_it_goes_down_missed_only_strictly_after_created_at_plus_interval_plus_grace() -> None:
    state = canary()
    due = CREATED + INTERVAL + GRACE
    assert deadline(state) == due
    assert evaluate(state, CREATED + INTERVAL) is None
    assert evaluate(state, due) is None  # at exactly the deadline it is still in its grace
    assert status_at(state, due) == "late"

    flip = evaluate(state, just_after(due))

    assert flip is not None
    assert (flip.status, flip.reason, flip.at) == ("down", "missed", just_after(due))
    assert (flip.canary_id, flip.canary_name) == (CANARY, "nightly-backup")
    assert flip.channels == ["chn_a", "chn_b"]
    assert flip.last_checkin_at is None
    assert status_at(state, just_after(due)) == "down"


@pytest.mark.parametrize("grace", [0, 1, GRACE])
def test_it_waits_exactly_the_grace_after_the_interval(grace: int) -> None:
    state = canary(grace_s=grace)
    assert evaluate(state, CREATED + INTERVAL + grace) is None
    assert evaluate(state, just_after(CREATED + INTERVAL + grace)) is not None


def test_it_flips_a_missed_canary_down_only_once() -> None:
    state = canary()
    assert evaluate(state, CREATED + 1000) is not None
    assert evaluate(state, CREATED + 1000) is None
    assert evaluate(state, CREATED + 10_000) is None
    assert deadline(state) is None


def test_it_starts_a_fresh_period_at_each_checkin() -> None:
    at = CREATED + INTERVAL + GRACE - 1  # just in time
    state = canary(checkin(at, message="ok"))
    assert deadline(state) == at + INTERVAL + GRACE
    assert next_due_at(state) == at + INTERVAL
    assert evaluate(state, just_after(CREATED + INTERVAL + GRACE)) is None
    assert evaluate(state, at + INTERVAL + GRACE) is None

    flip = evaluate(state, just_after(at + INTERVAL + GRACE))

    assert flip is not None and flip.reason == "missed"
    assert (flip.last_checkin_at, flip.message) == (at, "ok")


def test_it_keeps_the_latest_checkin_when_an_older_one_arrives_late() -> None:
    state = canary(checkin(CREATED + 50), checkin(CREATED + 40))
    assert state.last_checkin_at == CREATED + 50
    assert deadline(state) == CREATED + 50 + INTERVAL + GRACE


def test_it_has_no_deadline_without_a_definition() -> None:
    state = CanaryState(CANARY)
    assert deadline(state) is None and next_due_at(state) is None
    assert evaluate(state, CREATED + 10**9) is None


# --- the status a user sees ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("records", "now", "expected"),
    [
        pytest.param([], CREATED, "new", id="new-at-creation"),
        pytest.param([], CREATED + INTERVAL, "new", id="new-at-exactly-due"),
        pytest.param([], just_after(CREATED + INTERVAL), "late", id="late-just-after-due"),
        pytest.param([], CREATED + INTERVAL + GRACE, "late", id="late-through-grace"),
        pytest.param([checkin(CREATED + 10)], CREATED + 10, "up", id="up-after-checkin"),
        pytest.param(
            [checkin(CREATED + 10)], CREATED + 10 + INTERVAL, "up", id="up-at-exactly-due"
        ),
        pytest.param(
            [checkin(CREATED + 10)], CREATED + 11 + INTERVAL, "late", id="late-after-checkin"
        ),
        pytest.param([checkin(CREATED + 10, "fail")], CREATED + 10, "down", id="down-after-fail"),
        pytest.param(
            [definition(paused=True, changed_at=CREATED + 5)], CREATED + 5, "paused", id="paused"
        ),
        pytest.param(
            [checkin(CREATED + 10, "fail"), definition(paused=True, changed_at=CREATED + 20)],
            CREATED + 20,
            "paused",
            id="paused-wins-over-down",
        ),
    ],
)
def test_it_reports_the_status_at_a_moment(records: list[Any], now: float, expected: str) -> None:
    state = CanaryState(CANARY)
    for record in (definition(), *records):
        apply(state, record)
    assert status_at(state, now) == expected


def test_it_reports_down_after_a_missed_deadline_was_evaluated() -> None:
    state = canary()
    evaluate(state, CREATED + 1000)
    assert status_at(state, CREATED + 1000) == "down"


def test_it_reports_next_due_at_from_creation_then_from_the_last_checkin() -> None:
    state = canary()
    assert next_due_at(state) == CREATED + INTERVAL
    apply(state, checkin(CREATED + 7))
    assert next_due_at(state) == CREATED + 7 + INTERVAL
    apply(state, checkin(CREATED + 7, "start"))
    assert next_due_at(state) == CREATED + 7 + INTERVAL  # a start is not a finished run


# --- /fail ---------------------------------------------------------------------------------
def test_it_goes_down_at_once_on_fail_and_only_once() -> None:
    state = canary(checkin(CREATED + 10))
    fail_at = CREATED + 20

    flip = apply(state, checkin(fail_at, "fail", "disk full"))

    assert flip is not None
    assert (flip.status, flip.reason, flip.at) == ("down", "failed", fail_at)
    assert (flip.message, flip.last_checkin_at) == ("disk full", fail_at)
    assert flip.channels == ["chn_a", "chn_b"]
    assert apply(state, checkin(CREATED + 30, "fail")) is None
    assert evaluate(state, CREATED + 10_000) is None  # already down: no "missed" on top


def test_it_goes_down_on_fail_of_a_canary_that_never_checked_in() -> None:
    flip = apply(canary(), checkin(CREATED + 1, "fail"))
    assert flip is not None and (flip.status, flip.reason) == ("down", "failed")


def test_it_comes_back_up_on_the_next_success_and_only_once() -> None:
    state = canary()
    assert apply(state, checkin(CREATED + 10, "fail")) is not None

    flip = apply(state, checkin(CREATED + 20, message="fixed"))

    assert flip is not None
    assert (flip.status, flip.reason, flip.at) == ("up", "checkin", CREATED + 20)
    assert (flip.message, flip.last_checkin_at) == ("fixed", CREATED + 20)
    assert apply(state, checkin(CREATED + 30)) is None
    assert status_at(state, CREATED + 30) == "up"
    assert deadline(state) == CREATED + 30 + INTERVAL + GRACE


def test_it_comes_back_up_after_a_missed_deadline() -> None:
    state = canary()
    evaluate(state, CREATED + 1000)
    flip = apply(state, checkin(CREATED + 1001))
    assert flip is not None and (flip.status, flip.reason) == ("up", "checkin")


def test_it_does_not_come_up_on_a_start() -> None:
    state = canary()
    assert apply(state, checkin(CREATED + 10, "fail")) is not None
    assert apply(state, checkin(CREATED + 20, "start")) is None
    assert status_at(state, CREATED + 20) == "down"


def test_it_keeps_the_last_message_when_a_checkin_has_none() -> None:
    state = canary(checkin(CREATED + 10, message="first"), checkin(CREATED + 20))
    assert state.last_message == "first"


# --- /start and max_runtime ----------------------------------------------------------------
def test_it_goes_down_runtime_exceeded_when_a_run_does_not_finish() -> None:
    started = CREATED + 10
    state = canary(checkin(started, "start"), max_runtime_s=MAX_RUNTIME)
    assert deadline(state) == started + MAX_RUNTIME
    assert evaluate(state, started + MAX_RUNTIME) is None

    flip = evaluate(state, just_after(started + MAX_RUNTIME))

    assert flip is not None
    assert (flip.status, flip.reason) == ("down", "runtime_exceeded")
    assert evaluate(state, CREATED + 10_000) is None


@pytest.mark.parametrize("finish", ["success", "fail"])
def test_it_clears_the_run_when_it_finishes(finish: Literal["success", "fail"]) -> None:
    started = CREATED + 10
    state = canary(checkin(started, "start"), max_runtime_s=MAX_RUNTIME)

    apply(state, checkin(started + MAX_RUNTIME - 1, finish))

    assert state.started_at is None
    flip = evaluate(state, just_after(started + MAX_RUNTIME))
    assert flip is None or flip.reason != "runtime_exceeded"


def test_it_judges_a_finished_run_by_its_interval_again() -> None:
    started, finished = CREATED + 10, CREATED + 15
    state = canary(checkin(started, "start"), checkin(finished), max_runtime_s=MAX_RUNTIME)
    assert deadline(state) == finished + INTERVAL + GRACE
    assert evaluate(state, just_after(started + MAX_RUNTIME)) is None


def test_it_ignores_a_start_without_max_runtime() -> None:
    state = canary(checkin(CREATED + 10, "start"))
    assert deadline(state) == CREATED + INTERVAL + GRACE
    flip = evaluate(state, just_after(CREATED + INTERVAL + GRACE))
    assert flip is not None and flip.reason == "missed"


def test_it_reports_missed_when_the_interval_runs_out_before_the_runtime() -> None:
    started = CREATED + INTERVAL + GRACE - 5
    state = canary(checkin(started, "start"), max_runtime_s=MAX_RUNTIME)
    assert deadline(state) == CREATED + INTERVAL + GRACE
    flip = evaluate(state, just_after(CREATED + INTERVAL + GRACE))
    assert flip is not None and flip.reason == "missed"


def test_it_measures_the_runtime_from_the_latest_start() -> None:
    state = canary(
        checkin(CREATED + 10, "start"), checkin(CREATED + 25, "start"), max_runtime_s=MAX_RUNTIME
    )
    assert evaluate(state, just_after(CREATED + 10 + MAX_RUNTIME)) is None
    flip = evaluate(state, just_after(CREATED + 25 + MAX_RUNTIME))
    assert flip is not None and flip.reason == "runtime_exceeded"


# --- pause and resume ----------------------------------------------------------------------
def test_it_never_flips_a_paused_canary() -> None:
    state = canary(definition(paused=True, changed_at=CREATED + 5))
    assert deadline(state) is None
    assert evaluate(state, CREATED + 10**6) is None
    assert apply(state, checkin(CREATED + 10, "fail")) is None
    assert apply(state, checkin(CREATED + 20)) is None
    assert status_at(state, CREATED + 10**6) == "paused"


def test_it_stays_paused_through_a_checkin() -> None:
    state = canary(definition(paused=True, changed_at=CREATED + 5), checkin(CREATED + 10))
    assert status_at(state, CREATED + 10) == "paused"
    assert state.last_checkin_at == CREATED + 10  # recorded, though


def test_it_starts_a_fresh_period_new_on_resume_of_a_canary_that_never_checked_in() -> None:
    resumed = CREATED + 5000
    state = canary(
        definition(paused=True, changed_at=CREATED + 5),
        definition(paused=False, changed_at=resumed),
    )
    assert status_at(state, resumed) == "new"
    assert next_due_at(state) == resumed + INTERVAL
    assert evaluate(state, resumed + INTERVAL + GRACE) is None
    flip = evaluate(state, just_after(resumed + INTERVAL + GRACE))
    assert flip is not None and flip.reason == "missed"


def test_it_starts_a_fresh_period_up_on_resume_of_a_canary_that_checked_in() -> None:
    resumed = CREATED + 5000
    state = canary(
        checkin(CREATED + 10),
        definition(paused=True, changed_at=CREATED + 20),
        definition(paused=False, changed_at=resumed),
    )
    assert status_at(state, resumed) == "up"
    assert deadline(state) == resumed + INTERVAL + GRACE


def test_it_forgets_a_run_in_progress_on_resume() -> None:
    resumed = CREATED + 5000
    state = canary(
        checkin(CREATED + 10, "start"),
        definition(paused=True, max_runtime_s=MAX_RUNTIME, changed_at=CREATED + 11),
        definition(paused=False, max_runtime_s=MAX_RUNTIME, changed_at=resumed),
        max_runtime_s=MAX_RUNTIME,
    )
    assert state.started_at is None
    assert deadline(state) == resumed + INTERVAL + GRACE


# --- definitions ---------------------------------------------------------------------------
def test_it_ignores_a_replayed_definition_older_than_the_one_it_has() -> None:
    newer = definition(interval_s=3600, name="renamed", changed_at=CREATED + 100)
    state = canary(newer)

    assert apply(state, definition()) is None

    assert state.definition == newer
    assert deadline(state) == CREATED + 3600 + GRACE


def test_it_applies_a_changed_interval_to_the_current_period() -> None:
    state = canary(
        checkin(CREATED + 10), definition(interval_s=120, grace_s=0, changed_at=CREATED + 20)
    )
    assert deadline(state) == CREATED + 10 + 120


def test_it_keeps_the_creation_period_when_the_definition_is_seen_again() -> None:
    state = canary(definition())
    assert deadline(state) == CREATED + INTERVAL + GRACE


def test_it_never_flips_a_deleted_canary() -> None:
    state = canary(CanaryDeleted(CANARY, CREATED + 5))
    assert deadline(state) is None
    assert evaluate(state, CREATED + 10**6) is None
    assert apply(state, checkin(CREATED + 10, "fail")) is None


def test_it_does_not_bring_a_deleted_down_canary_back_up() -> None:
    state = canary()
    assert apply(state, checkin(CREATED + 10, "fail")) is not None
    apply(state, CanaryDeleted(CANARY, CREATED + 20))
    assert apply(state, checkin(CREATED + 30)) is None


# --- restoration and ticks -----------------------------------------------------------------
def test_it_keeps_a_restored_down_canary_down_without_a_flip() -> None:
    state = canary(StateRestored(CANARY, "down", CREATED + 500, CREATED + 5, "last words"))
    assert status_at(state, CREATED + 500) == "down"
    assert deadline(state) is None
    assert evaluate(state, CREATED + 10**6) is None
    flip = apply(state, checkin(CREATED + 600))  # and it recovers like any down canary
    assert flip is not None and (flip.status, flip.reason) == ("up", "checkin")


def test_it_starts_a_fresh_period_for_a_restored_up_canary_at_its_at() -> None:
    restored = CREATED + 5000  # long after its last check-in: the service was down meanwhile
    state = canary(StateRestored(CANARY, "up", restored, CREATED + 5, "ok"))
    assert (state.last_checkin_at, state.last_message) == (CREATED + 5, "ok")
    assert status_at(state, restored) == "up"
    assert evaluate(state, restored + INTERVAL + GRACE) is None
    flip = evaluate(state, just_after(restored + INTERVAL + GRACE))
    assert flip is not None and flip.reason == "missed"


def test_it_applies_a_restored_state_that_arrives_before_the_definition() -> None:
    restored = CREATED + 5000
    state = CanaryState(CANARY)
    assert apply(state, StateRestored(CANARY, "up", restored, CREATED + 5)) is None
    assert apply(state, definition()) is None
    assert deadline(state) == restored + INTERVAL + GRACE


@pytest.mark.parametrize(
    "records",
    [
        pytest.param([], id="new"),
        pytest.param([checkin(CREATED + 10)], id="up"),
        pytest.param([checkin(CREATED + 10, "fail")], id="down"),
        pytest.param([checkin(CREATED + 10, "start")], id="running"),
        pytest.param([definition(paused=True, changed_at=CREATED + 1)], id="paused"),
    ],
)
def test_it_changes_nothing_on_a_tick(records: list[Any]) -> None:
    state = CanaryState(CANARY)
    for record in (definition(max_runtime_s=MAX_RUNTIME), *records):
        apply(state, record)
    before = encoded(state)
    assert apply(state, Tick(CREATED + 10**6)) is None
    assert encoded(state) == before


# --- flip ids ------------------------------------------------------------------------------
def _replayed(records: list[Any], now: float) -> list[Flip]:
    state, flips = CanaryState(CANARY), []
    for record in records:
        flips.append(apply(state, record))
    flips.append(evaluate(state, now))
    return [f for f in flips if f is not None]


@pytest.mark.parametrize(
    "records",
    [
        pytest.param([definition()], id="missed"),
        pytest.param([definition(), checkin(CREATED + 1, "fail")], id="failed"),
        pytest.param([definition(), checkin(CREATED + 1, "fail"), checkin(CREATED + 2)], id="up"),
        pytest.param(
            [definition(max_runtime_s=MAX_RUNTIME), checkin(CREATED + 1, "start")], id="runtime"
        ),
    ],
)
def test_it_derives_the_same_flip_ids_from_the_same_input(records: list[Any]) -> None:
    first = _replayed(records, CREATED + 1000)
    assert first and first == _replayed(records, CREATED + 1000)
    assert all(f.id.startswith(CANARY + ":") for f in first)  # the notifications query relies on it


def test_it_gives_a_missed_flip_the_same_id_whenever_it_is_evaluated() -> None:
    # A worker restarted after a crash re-evaluates at a later stream time: same flip.
    early, late = evaluate(canary(), CREATED + 100), evaluate(canary(), CREATED + 5000)
    assert early is not None and late is not None and early.id == late.id


def test_it_gives_missed_flips_of_different_periods_different_ids() -> None:
    state = canary()
    first = evaluate(state, CREATED + 100)
    apply(state, checkin(CREATED + 200))
    second = evaluate(state, CREATED + 1000)
    assert first is not None and second is not None and first.id != second.id


def test_it_gives_down_and_up_flips_of_one_checkin_different_ids() -> None:
    state = canary()
    down = apply(state, checkin(CREATED + 1, "fail"))
    up = apply(state, checkin(CREATED + 1))
    assert down is not None and up is not None and down.id != up.id


@pytest.mark.parametrize("kind", ["fail", "success"])
def test_it_does_not_flip_twice_on_a_replayed_checkin(kind: Literal["success", "fail"]) -> None:
    state = canary()
    if kind == "success":
        evaluate(state, CREATED + 1000)
    record = checkin(CREATED + 1001, kind)
    assert apply(state, record) is not None
    assert apply(state, record) is None


# --- persistence ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "state",
    [
        pytest.param(CanaryState(CANARY), id="empty"),
        pytest.param(canary(), id="new"),
        pytest.param(canary(checkin(CREATED + 1, message="héllo ✓")), id="up"),
        pytest.param(
            canary(checkin(CREATED + 1.125, "start"), max_runtime_s=MAX_RUNTIME), id="running"
        ),
        pytest.param(
            canary(StateRestored(CANARY, "down", CREATED + 0.1, CREATED + 0.3)), id="restored"
        ),
        pytest.param(canary(definition(paused=True, changed_at=CREATED + 1)), id="paused"),
        pytest.param(canary(CanaryDeleted(CANARY, CREATED + 1)), id="deleted"),
    ],
)
def test_it_round_trips_its_state_through_the_encoder(state: CanaryState) -> None:
    assert state_decoder.decode(state_encoder.encode(state)) == state


# --- properties ----------------------------------------------------------------------------
# Whole seconds and small periods, so that steps often land exactly on a deadline.
steps = st.lists(
    st.tuples(st.integers(0, 8), st.sampled_from(["success", "start", "fail", "tick", "evaluate"])),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    steps=steps,
    interval=st.integers(1, 5),
    grace=st.integers(0, 3),
    max_runtime=st.none() | st.integers(1, 6),
)
def test_it_alternates_down_and_up_and_never_goes_down_before_a_deadline(
    steps: list[tuple[int, str]], interval: int, grace: int, max_runtime: int | None
) -> None:
    state = canary(interval_s=interval, grace_s=grace, max_runtime_s=max_runtime)
    now, flips = CREATED, []
    for step, (gap, action) in enumerate(steps):
        now += gap
        due = deadline(state)
        if action == "tick":
            flip = apply(state, Tick(now))
        elif action == "evaluate":
            flip = evaluate(state, now)
            # It goes down exactly when a deadline is in force and now is strictly after it.
            assert (flip is not None) == (due is not None and now > due)
            if flip is not None:
                assert flip.status == "down" and flip.at > due  # type: ignore[operator]
        else:
            flip = apply(state, checkin(now, action, id=f"chk{step}"))  # type: ignore[arg-type]
        if flip is not None:
            flips.append(flip)
    statuses = [f.status for f in flips]
    assert statuses == ["down", "up"] * (len(statuses) // 2) + ["down"] * (len(statuses) % 2)
    assert len({f.id for f in flips}) == len(flips)
