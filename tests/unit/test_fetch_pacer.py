"""The fetch pacer: short fetches while records flow; once quiet, rests that double up to the
idle time (or, for a consumer that cannot pause, held waits that do); a hurry ends either at
once, and `settled` only once a fetch from before the hurry has surely come back."""

from __future__ import annotations

from runtime.kafka_client import BUSY_WAIT_MS, QUIET_BEFORE_REST_S, FetchPacer


def held(idle_ms: int = 2_000) -> tuple[FetchPacer, list[int]]:
    applied: list[int] = []
    return FetchPacer(idle_ms, applied.append), applied


def quiet_polls(pacer: FetchPacer, start: float, seconds: float, every: float = 0.05) -> float:
    now = start
    while now < start + seconds:
        if not pacer.resting(now):
            pacer.polled(False, now)
        now += every
    return now


def test_it_does_not_rest_while_polls_find_records() -> None:
    p = FetchPacer(5_000)
    for i in range(100):
        p.polled(True, now=i * 0.05)
    assert not p.resting(5.0) and p.wait_ms == BUSY_WAIT_MS


def test_it_rests_only_after_a_quiet_spell_then_rests_longer_up_to_the_idle_time() -> None:
    p = FetchPacer(1_000)
    p.polled(False, now=0.0)
    assert not p.resting(0.01)  # one empty poll is no quiet spell
    quiet_polls(p, 0.05, QUIET_BEFORE_REST_S)
    assert p.resting(QUIET_BEFORE_REST_S + 0.05)
    rests = []
    now = QUIET_BEFORE_REST_S + 0.05
    for _ in range(8):
        now = p.rest_until
        p.polled(False, now)
        rests.append(p.rest_ms)
    assert rests[0] > 2 * BUSY_WAIT_MS and rests[-1] == 1_000 and rests == sorted(rests)
    assert p.wait_ms == BUSY_WAIT_MS  # resting consumers fetch with short waits


def test_records_end_the_quiet_spell() -> None:
    p = FetchPacer(1_000)
    quiet_polls(p, 0.0, 3.0)
    p.polled(True, now=p.rest_until)
    assert not p.resting(p.rest_until) and p.rest_ms == 0


def test_a_consumer_that_never_rests() -> None:
    p = FetchPacer(0)
    quiet_polls(p, 0.0, 10.0)
    assert not p.resting(10.0)


def test_a_hurry_ends_a_rest_at_once_and_wakes_the_consumer() -> None:
    p = FetchPacer(5_000)
    now = quiet_polls(p, 0.0, 3.0)
    assert p.resting(now) and not p.woken.is_set()
    p.hurry(2.0, now)
    assert not p.resting(now) and p.woken.is_set()
    p.polled(False, now + 1.0)  # still hurried: no rest
    assert not p.resting(now + 1.0)


def test_held_waits_double_up_to_the_idle_wait_and_reset_on_records() -> None:
    p, applied = held(idle_ms=1_000)
    for _ in range(10):
        p.polled(False, now=0.0)
    assert applied == [100, 200, 400, 800, 1_000]
    assert not p.resting(0.0)  # a held-wait consumer never pauses
    p.polled(True, now=0.0)
    assert applied[-1] == BUSY_WAIT_MS


def test_held_waits_tell_the_client_only_when_the_wait_changes() -> None:
    p, applied = held()
    for _ in range(5):
        p.polled(True, now=0.0)
    assert applied == []


def test_a_hurry_keeps_held_waits_short_until_it_runs_out() -> None:
    p, applied = held(idle_ms=2_000)
    for _ in range(8):
        p.polled(False, now=0.0)
    p.hurry(5.0, now=10.0)
    assert p.wait_ms == BUSY_WAIT_MS and applied[-1] == BUSY_WAIT_MS
    p.polled(False, now=14.9)
    assert p.wait_ms == BUSY_WAIT_MS
    p.polled(False, now=15.1)
    assert p.wait_ms == 2 * BUSY_WAIT_MS


def test_settled_waits_out_the_fetch_held_when_the_hurry_came() -> None:
    p, _ = held(idle_ms=2_000)
    for _ in range(8):
        p.polled(False, now=0.0)
    p.hurry(60.0, now=100.0)  # a fetch sent just before may be held for 2 s
    assert not p.settled(now=101.9)
    assert p.settled(now=102.0 + 2 * BUSY_WAIT_MS / 1000)


def test_a_hurry_while_hurried_does_not_push_settling_back() -> None:
    p = FetchPacer(5_000)
    p.hurry(60.0, now=0.0)
    p.hurry(60.0, now=1.0)
    assert p.settled(now=1.0)


def test_consumers_rest_only_where_the_settings_say_the_broker_needs_it() -> None:
    """Settings.fetch_rests (on under coalmine up's embedded broker): rests; off (Kafka,
    Redpanda): held fetches, capped so a stop never waits long for one to come back."""
    import asyncio

    from runtime import kafka_client as kafka
    from runtime.settings import load_settings

    async def pacers() -> tuple[FetchPacer, FetchPacer]:
        made = []
        for rests in (True, False):
            kafka.rest_when_idle(rests)
            consumer = kafka.consumer("127.0.0.1:1", idle_wait_ms=10_000)
            made.append(consumer.pacer)
            await consumer.stop()
        return made[0], made[1]

    try:
        resting, holding = asyncio.run(pacers())
    finally:
        kafka.rest_when_idle(False)
    quiet_polls(resting, 0.0, 2.0)
    quiet_polls(holding, 0.0, 2.0)
    assert resting.resting(2.0) and resting.wait_ms == BUSY_WAIT_MS
    assert not holding.resting(2.0) and holding.wait_ms == kafka.HELD_WAIT_MAX_MS
    assert load_settings({}).fetch_rests is False
    assert load_settings({"COALMINE_FETCH_RESTS": "True"}).fetch_rests is True


def test_a_poll_returns_often_enough_to_see_a_hurry_except_for_probes() -> None:
    resting, (holding, _) = FetchPacer(5_000), held(idle_ms=1_000)
    assert resting.decides_in(0.0) == QUIET_BEFORE_REST_S
    assert holding.decides_in(0.0) == QUIET_BEFORE_REST_S  # a stop is seen within it
    assert FetchPacer(0).decides_in(0.0) == float("inf")  # a probe polls as asked
