"""domain.canary_state: failure_threshold, recovery_threshold, failure rate over the last runs,
run ids and /log check-ins, fed records with explicit times."""

from __future__ import annotations

from typing import Any

import msgspec

from domain.canary_state import CanaryState, apply, deadline, evaluate
from schemas.canaries import CanaryDefined, CheckIn, FailureRate, Flip

CANARY = "can_00000000000000dd"
CREATED = 1_750_000_000.0
INTERVAL, GRACE = 60, 0


def canary(**changes: Any) -> CanaryState:
    definition = CanaryDefined(
        id=CANARY, name="flaky", token_hash="0" * 64, interval_s=INTERVAL, grace_s=GRACE,
        channels=[], created_at=CREATED, changed_at=CREATED,
    )  # fmt: skip
    state = CanaryState(CANARY)
    assert apply(state, msgspec.structs.replace(definition, **changes)) is None
    return state


class Feed:
    """Check-ins one second apart."""

    def __init__(self, state: CanaryState) -> None:
        self.state, self.at = state, CREATED

    def __call__(self, kind: str, rid: str = "", message: str = "") -> Flip | None:
        self.at += 1
        return apply(self.state, CheckIn(f"chk-{self.at!r}", CANARY, kind, self.at, message, rid))  # type: ignore[arg-type]


def test_it_goes_down_only_after_failure_threshold_consecutive_failures() -> None:
    state = canary(failure_threshold=3)
    feed = Feed(state)
    assert feed("fail") is None and feed("fail") is None
    assert feed("success") is None  # the count starts again
    assert feed("fail") is None and feed("fail") is None
    flip = feed("fail")
    assert flip is not None and (flip.status, flip.reason) == ("down", "failed")
    assert feed("fail") is None  # down already


def test_misses_count_as_failures_and_move_the_canary_to_its_next_period() -> None:
    state = canary(failure_threshold=2)
    first_due = CREATED + INTERVAL + GRACE
    assert evaluate(state, first_due + 1) is None  # one miss: counted, not down
    assert state.status != "down" and state.failures == 1
    assert deadline(state) == CREATED + 2 * INTERVAL + GRACE
    flip = evaluate(state, CREATED + 2 * INTERVAL + 1)
    assert flip is not None and flip.reason == "missed"


def test_it_comes_back_up_only_after_recovery_threshold_consecutive_successes() -> None:
    state = canary(recovery_threshold=3)
    feed = Feed(state)
    assert feed("fail") is not None
    assert feed("success") is None and feed("success") is None
    assert feed("fail") is None  # a failure in between starts the count again
    assert feed("success") is None and feed("success") is None
    flip = feed("success")
    assert flip is not None and (flip.status, flip.reason) == ("up", "checkin")


def test_it_goes_down_when_enough_of_the_last_runs_failed() -> None:
    state = canary(failure_threshold=10, failure_rate=FailureRate(failures=3, runs=5))
    feed = Feed(state)
    for kind in ("fail", "success", "fail", "success", "success", "success"):
        assert feed(kind) is None  # never 3 failures among the last 5
    assert feed("fail") is None  # the window: s s s s f -> 1 failure
    assert feed("fail") is None  # s s s f f
    flip = feed("fail")  # s s f f f
    assert flip is not None and (flip.status, flip.reason) == ("down", "failure_rate")


def test_a_miss_counts_in_the_failure_rate() -> None:
    state = canary(failure_threshold=10, failure_rate=FailureRate(failures=2, runs=3))
    feed = Feed(state)
    assert feed("fail") is None
    flip = evaluate(state, feed.at + INTERVAL + GRACE + 1)
    assert flip is not None and flip.reason == "failure_rate"


def test_a_recovered_canary_starts_a_fresh_window_of_runs() -> None:
    state = canary(failure_threshold=10, failure_rate=FailureRate(failures=2, runs=10))
    feed = Feed(state)
    assert feed("fail") is None and feed("fail") is not None
    assert feed("success") is not None  # up
    assert feed("fail") is None  # one failure in the fresh window


def test_a_log_check_in_changes_nothing() -> None:
    state = canary()
    feed = Feed(state)
    assert feed("success", message="ran") is None
    before = msgspec.json.encode(state)
    assert feed("log", message="just saying") is None
    assert msgspec.json.encode(state) == before


def test_a_finish_with_another_runs_id_leaves_the_run_in_progress() -> None:
    state = canary(interval_s=3600, max_runtime_s=30)
    feed = Feed(state)
    assert feed("start", rid="a") is None
    started = feed.at
    assert feed("start", rid="b") is None
    assert feed("success", rid="a") is None  # run a ended; b is still going
    assert state.started_at == started + 1 and deadline(state) == started + 1 + 30
    assert feed("success", rid="b") is None
    assert state.started_at is None


def test_a_finish_without_run_id_ends_the_latest_run() -> None:
    state = canary(interval_s=3600, max_runtime_s=30)
    feed = Feed(state)
    assert feed("start", rid="a") is None
    assert feed("success") is None
    assert state.started_at is None


def test_defaults_keep_the_old_behaviour() -> None:
    state = canary()
    feed = Feed(state)
    flip = feed("fail")
    assert flip is not None and flip.reason == "failed"
    flip = feed("success")
    assert flip is not None and flip.reason == "checkin"


def test_a_resumed_canary_starts_its_counts_afresh() -> None:
    state = canary(failure_threshold=2)
    feed = Feed(state)
    assert feed("fail") is None
    definition = state.definition
    assert definition is not None
    paused = msgspec.structs.replace(definition, paused=True, changed_at=feed.at + 1)
    assert apply(state, paused) is None
    assert (
        apply(state, msgspec.structs.replace(paused, paused=False, changed_at=feed.at + 2)) is None
    )
    feed.at += 2
    assert feed("fail") is None  # one failure since the resumption, not two
