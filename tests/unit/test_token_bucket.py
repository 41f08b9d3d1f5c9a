"""domain.token_bucket: the one token bucket the API enforces and the agent replays."""

from __future__ import annotations

import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.token_bucket import Bucket, Limit, debit, decide, full, refill, seconds_until
from schemas.limits import DEFAULT_BURST, DEFAULT_RATE_PER_MINUTE

LIMIT = Limit(DEFAULT_RATE_PER_MINUTE, DEFAULT_BURST)
RATE_PER_S = DEFAULT_RATE_PER_MINUTE / 60
T0 = 1_782_986_400.0  # a realistic unix time: float rounding shows at this magnitude


def test_it_defaults_to_the_spec_limit() -> None:
    assert Limit() == Limit(DEFAULT_RATE_PER_MINUTE, DEFAULT_BURST)
    assert Limit().rate_per_s == DEFAULT_RATE_PER_MINUTE / 60


def test_it_starts_full() -> None:
    assert full(LIMIT, T0) == Bucket(float(DEFAULT_BURST), T0)


def test_it_admits_a_request_the_level_covers_and_takes_its_tokens() -> None:
    decision = decide(full(LIMIT, T0), 7, LIMIT, T0)

    assert decision.admitted
    assert decision.bucket == Bucket(DEFAULT_BURST - 7.0, T0)
    assert decision.remaining == DEFAULT_BURST - 7
    assert decision.reset_s == math.ceil(7 / RATE_PER_S)
    assert decision.retry_after_s is None


def test_it_admits_a_request_that_takes_exactly_the_level() -> None:
    decision = decide(full(LIMIT, T0), DEFAULT_BURST, LIMIT, T0)

    assert decision.admitted
    assert decision.bucket.level == 0
    assert decision.remaining == 0
    assert decision.reset_s == math.ceil(DEFAULT_BURST / RATE_PER_S)


def test_it_refuses_a_request_above_the_level_and_takes_nothing() -> None:
    bucket = Bucket(10.0, T0)

    decision = decide(bucket, 13, LIMIT, T0 + 2)

    refilled = Bucket(10.0 + 2 * RATE_PER_S, T0 + 2)
    assert not decision.admitted
    assert decision.bucket == refilled  # unchanged but for the refill
    assert decision.remaining == math.floor(refilled.level)
    assert decision.reset_s == math.ceil((DEFAULT_BURST - refilled.level) / RATE_PER_S)
    assert decision.retry_after_s == max(1, math.ceil((13 - refilled.level) / RATE_PER_S))


def test_it_tells_a_refused_request_to_retry_when_the_missing_tokens_exist() -> None:
    limit = Limit(DEFAULT_RATE_PER_MINUTE * 2, DEFAULT_BURST)  # 2 tokens a second

    decision = decide(Bucket(0.0, T0), 7, limit, T0)

    assert decision.retry_after_s == math.ceil(7 / limit.rate_per_s)


def test_it_asks_for_at_least_one_second_before_a_retry() -> None:
    limit = Limit(DEFAULT_RATE_PER_MINUTE * 10, DEFAULT_BURST)  # 10 tokens a second

    decision = decide(Bucket(4.5, T0), 5, limit, T0)

    assert not decision.admitted
    assert decision.retry_after_s == 1


def test_it_gives_no_retry_time_to_a_request_larger_than_the_burst() -> None:
    decision = decide(full(LIMIT, T0), DEFAULT_BURST + 1, LIMIT, T0)

    assert not decision.admitted
    assert decision.retry_after_s is None
    assert decision.bucket == full(LIMIT, T0)


def test_it_reports_no_remaining_tokens_for_a_bucket_in_debt() -> None:
    decision = decide(Bucket(-30.0, T0), 1, LIMIT, T0)

    assert not decision.admitted
    assert decision.remaining == 0
    assert decision.retry_after_s == math.ceil(31 / RATE_PER_S)
    assert decision.reset_s == math.ceil((DEFAULT_BURST + 30) / RATE_PER_S)


def test_it_refills_at_the_rate() -> None:
    assert refill(Bucket(0.0, T0), LIMIT, T0 + 3) == Bucket(3 * RATE_PER_S, T0 + 3)


def test_it_caps_the_refill_at_the_burst() -> None:
    assert refill(Bucket(DEFAULT_BURST - 1.0, T0), LIMIT, T0 + 3600) == Bucket(
        float(DEFAULT_BURST), T0 + 3600
    )


def test_it_adds_nothing_when_time_runs_backwards() -> None:
    bucket = Bucket(5.0, T0)

    assert refill(bucket, LIMIT, T0 - 30) == bucket


def test_it_never_moves_a_bucket_back_in_time() -> None:
    later = refill(Bucket(5.0, T0), LIMIT, T0 - 30)
    decision = decide(Bucket(5.0, T0), 1, LIMIT, T0 - 30)

    assert later.at == T0
    assert decision.bucket == Bucket(4.0, T0)


def test_it_debits_below_zero() -> None:
    assert debit(Bucket(3.0, T0), 10, LIMIT, T0) == Bucket(-7.0, T0)


def test_it_refills_before_debiting() -> None:
    assert debit(Bucket(0.0, T0), 10, LIMIT, T0 + 4) == Bucket(4 * RATE_PER_S - 10, T0 + 4)


def test_it_lets_available_cap_what_may_be_spent() -> None:
    bucket = full(LIMIT, T0)

    refused = decide(bucket, 11, LIMIT, T0, available=10.0)
    admitted = decide(bucket, 10, LIMIT, T0, available=10.0)

    assert not refused.admitted
    assert refused.bucket == bucket
    assert admitted.admitted
    assert admitted.bucket.level == DEFAULT_BURST - 10  # the whole level is debited


def test_it_never_lets_available_exceed_the_level() -> None:
    decision = decide(Bucket(5.0, T0), 6, LIMIT, T0, available=50.0)

    assert not decision.admitted


def test_it_counts_no_wait_for_a_level_already_there() -> None:
    assert seconds_until(10.0, 10, LIMIT) == 0
    assert seconds_until(10.0, 4, LIMIT) == 0


limits = st.builds(Limit, st.integers(1, 600), st.integers(1, 500))


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.data(), limit=limits)
def test_it_never_admits_more_than_burst_plus_refill_in_any_window(
    data: st.DataObject, limit: Limit
) -> None:
    requests = data.draw(
        st.lists(
            st.tuples(
                st.integers(1, limit.burst + 10),
                st.one_of(st.just(0.0), st.floats(0, 30, allow_nan=False)),
            ),
            min_size=1,
            max_size=60,
        )
    )
    bucket, now, admitted = full(limit, T0), T0, []
    for n, gap in requests:
        now += gap
        decision = decide(bucket, n, limit, now)
        if decision.admitted:
            assert decision.bucket.level >= -1e-9
        else:
            assert decision.bucket == refill(bucket, limit, now)
        bucket = decision.bucket
        admitted.append((now, n if decision.admitted else 0))

    for i, (start, _) in enumerate(admitted):
        total = 0
        for end, n in admitted[i:]:
            total += n
            assert total <= limit.burst + limit.rate_per_s * (end - start) + 1e-6


@settings(max_examples=300, deadline=None, database=None)
@given(
    limit=limits,
    level=st.floats(-500, 500, allow_nan=False),
    n=st.integers(1, 500),
    since=st.floats(0, 30, allow_nan=False),
)
def test_it_has_the_tokens_at_the_retry_time_it_gives(
    limit: Limit, level: float, n: int, since: float
) -> None:
    level, n = min(level, limit.burst), min(n, limit.burst)
    decision = decide(Bucket(level, T0), n, limit, T0 + since)
    if decision.admitted:
        return
    assert decision.retry_after_s is not None and decision.retry_after_s >= 1
    retry_at = T0 + since + decision.retry_after_s
    assert refill(decision.bucket, limit, retry_at).level >= n - 1e-9
    assert decide(decision.bucket, n, limit, retry_at).admitted


def test_it_admits_a_retry_at_the_retry_time_it_gives() -> None:
    limit = Limit(11, 55)  # 11/60 tokens a second: 300 s * (11/60) rounds to 54.999...
    emptied = decide(full(limit, T0), 55, limit, T0).bucket

    refused = decide(emptied, 55, limit, T0)
    assert refused.retry_after_s is not None
    retried = decide(refused.bucket, 55, limit, T0 + refused.retry_after_s)

    assert retried.admitted, f"refused with remaining={retried.remaining}"


@settings(max_examples=300, deadline=None, database=None)
@example(limit=Limit(11, 55), first=55, second=55, gap=0.0)
@given(
    limit=limits,
    first=st.integers(1, 500),
    second=st.integers(1, 500),
    gap=st.one_of(st.just(0.0), st.floats(0, 30, allow_nan=False)),
)
def test_it_admits_any_refused_request_retried_alone_at_its_retry_time(
    limit: Limit, first: int, second: int, gap: float
) -> None:
    first, second = min(first, limit.burst), min(second, limit.burst)
    bucket = decide(full(limit, T0), first, limit, T0).bucket
    refused = decide(bucket, second, limit, T0 + gap)
    if refused.admitted:
        return
    assert refused.retry_after_s is not None

    retried = decide(refused.bucket, second, limit, T0 + gap + refused.retry_after_s)

    assert retried.admitted
