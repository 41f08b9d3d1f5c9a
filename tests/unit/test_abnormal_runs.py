"""domain.abnormal_runs through domain.canary_state: runs far longer or shorter than the
canary's own past runs, and successes too early for the schedule, each explained."""

from __future__ import annotations

from typing import Any

import msgspec

from domain.abnormal_runs import human, percentile, run_verdict
from domain.canary_state import CanaryState, apply
from schemas.canaries import AbnormalRuns, CanaryDefined, CheckIn, Flip

CANARY = "can_00000000000000ab"
CREATED = 1_750_000_000.0


def canary(abnormal: AbnormalRuns, **changes: Any) -> CanaryState:
    definition = CanaryDefined(
        id=CANARY, name="etl", token_hash="0" * 64, interval_s=3600, grace_s=0, channels=[],
        created_at=CREATED, changed_at=CREATED, abnormal=abnormal,
    )  # fmt: skip
    state = CanaryState(CANARY)
    assert apply(state, msgspec.structs.replace(definition, **changes)) is None
    return state


def run(state: CanaryState, start: float, took: float) -> Flip | None:
    assert apply(state, CheckIn(f"s{start!r}", CANARY, "start", start)) is None
    return apply(state, CheckIn(f"e{start!r}", CANARY, "success", start + took))


def test_a_run_far_longer_than_its_p95_is_a_failure_explained() -> None:
    state = canary(AbnormalRuns(longer_than_p95_by=2, min_runs=5))
    for i in range(10):
        assert run(state, CREATED + i * 3600, 600 + i) is None  # 10-ish minutes each
    flip = run(state, CREATED + 10 * 3600, 41 * 60)
    assert flip is not None and (flip.status, flip.reason) == ("down", "run_too_long")
    assert flip.message == "took 41 min; 2 x the p95 of the last 10 runs is 20 min"
    # The abnormal run stays out of the history; the next normal run brings it back up.
    assert len(state.durations) == 10
    flip = run(state, CREATED + 11 * 3600, 600)
    assert flip is not None and (flip.status, flip.reason) == ("up", "checkin")


def test_a_run_far_shorter_than_its_p5_is_a_failure() -> None:
    state = canary(AbnormalRuns(shorter_than_p5_by=10, min_runs=3))
    for i in range(3):
        assert run(state, CREATED + i * 3600, 300) is None
    flip = run(state, CREATED + 3 * 3600, 2)
    assert flip is not None and flip.reason == "run_too_short"
    assert flip.message == "took 2.0 s; the p5 of the last 3 runs / 10 is 30 s"


def test_nothing_is_judged_before_min_runs() -> None:
    state = canary(AbnormalRuns(longer_than_p95_by=1.5, min_runs=5))
    for i in range(4):
        assert run(state, CREATED + i * 3600, 10 if i < 3 else 10_000) is None


def test_a_cron_success_before_its_next_slot_is_too_early() -> None:
    state = canary(AbnormalRuns(too_early=True), interval_s=0, schedule="0 3 * * *", timezone="UTC")
    day = 1_767_236_400.0  # 2026-01-01 03:00:00Z
    assert apply(state, CheckIn("a", CANARY, "success", day + 60)) is None
    flip = apply(state, CheckIn("b", CANARY, "success", day + 300))  # same slot again
    assert flip is not None and flip.reason == "too_early"
    assert "before its next slot" in flip.message
    assert apply(state, CheckIn("c", CANARY, "success", day + 86400 + 60)) is not None  # up again


def test_an_interval_success_under_half_the_interval_is_too_early() -> None:
    state = canary(AbnormalRuns(too_early=True))
    assert apply(state, CheckIn("a", CANARY, "success", CREATED + 3600)) is None
    assert apply(state, CheckIn("b", CANARY, "success", CREATED + 3600 + 1801)) is None
    flip = apply(state, CheckIn("c", CANARY, "success", CREATED + 3600 + 1801 + 1799))
    assert flip is not None and flip.reason == "too_early"


def test_abnormal_runs_count_towards_the_failure_threshold() -> None:
    state = canary(AbnormalRuns(longer_than_p95_by=2, min_runs=2), failure_threshold=2)
    for i in range(2):
        assert run(state, CREATED + i * 3600, 60) is None
    assert run(state, CREATED + 2 * 3600, 1000) is None  # one: below the threshold
    flip = run(state, CREATED + 3 * 3600, 1000)
    assert flip is not None and flip.reason == "run_too_long"


def test_helpers() -> None:
    assert percentile([5, 1, 3], 0.5) == 3 and percentile([1.0], 0.95) == 1.0
    assert [human(s) for s in (2, 45, 600, 9000)] == ["2.0 s", "45 s", "10 min", "2.5 h"]
    assert run_verdict(AbnormalRuns(), [1.0] * 20, 1000) is None  # no rule given
