"""ingest_api.backpressure.Backpressure: shed on the sink's lag with hysteresis, Retry-After
from the drain rate, and a cap on batches in flight."""

from __future__ import annotations

from ingest_api.backpressure import RETRY_AFTER_MAX_S, Backpressure


def test_it_sheds_above_the_lag_and_takes_again_below_half_of_it() -> None:
    bp = Backpressure(shed_lag_records=100, max_in_flight=10)
    bp.observe(100, 0, 0.0)
    assert not bp.shedding and bp.refusal() is None
    bp.observe(101, 0, 1.0)
    assert bp.shedding and "101 batches behind" in (bp.refusal() or "")
    bp.observe(60, 41, 2.0)  # draining at 41/s, still over half
    assert bp.shedding and bp.retry_after_s == 2  # 60 / 41, rounded up
    bp.observe(50, 51, 3.0)
    assert not bp.shedding


def test_retry_after_stays_within_bounds() -> None:
    bp = Backpressure(shed_lag_records=10, max_in_flight=10)
    bp.observe(1_000_000, 0, 0.0)  # no drain seen yet
    assert bp.retry_after_s == RETRY_AFTER_MAX_S
    bp.observe(1_000, 1_000_000, 1.0)  # draining fast
    assert bp.retry_after_s == 1


def test_zero_never_sheds_on_lag_but_in_flight_still_counts() -> None:
    bp = Backpressure(shed_lag_records=0, max_in_flight=2)
    bp.observe(10**9, 0, 0.0)
    assert bp.refusal() is None
    bp.in_flight = 2
    assert "2 batches are waiting" in (bp.refusal() or "")
