"""The fetch pacer: short waits while records flow, growing to the idle wait while none come,
short again after a hurry, and `settled` only once a held fetch has surely come back."""

from __future__ import annotations

from coalmine.log import BUSY_WAIT_MS, FetchPacer


def pacer(idle_ms: int = 2_000) -> tuple[FetchPacer, list[int]]:
    applied: list[int] = []
    return FetchPacer(idle_ms, applied.append), applied


def test_it_starts_short_and_doubles_on_each_empty_poll_up_to_the_idle_wait() -> None:
    p, applied = pacer(idle_ms=1_000)
    assert p.wait_ms == BUSY_WAIT_MS
    for _ in range(10):
        p.polled(False, now=0.0)
    assert applied == [100, 200, 400, 800, 1_000]
    assert p.wait_ms == 1_000


def test_it_goes_back_to_short_waits_as_soon_as_a_poll_finds_records() -> None:
    p, applied = pacer()
    for _ in range(6):
        p.polled(False, now=0.0)
    p.polled(True, now=0.0)
    assert p.wait_ms == BUSY_WAIT_MS
    assert applied[-1] == BUSY_WAIT_MS


def test_it_tells_the_client_only_when_the_wait_changes() -> None:
    p, applied = pacer()
    for _ in range(5):
        p.polled(True, now=0.0)
    assert applied == []


def test_a_hurry_keeps_waits_short_until_it_runs_out() -> None:
    p, applied = pacer(idle_ms=2_000)
    for _ in range(8):
        p.polled(False, now=0.0)
    p.hurry(5.0, now=10.0)
    assert p.wait_ms == BUSY_WAIT_MS and applied[-1] == BUSY_WAIT_MS
    p.polled(False, now=14.9)
    assert p.wait_ms == BUSY_WAIT_MS
    p.polled(False, now=15.1)
    assert p.wait_ms == 2 * BUSY_WAIT_MS


def test_settled_waits_out_the_fetch_held_when_the_hurry_came() -> None:
    p, _ = pacer(idle_ms=2_000)
    for _ in range(8):
        p.polled(False, now=0.0)
    p.hurry(60.0, now=100.0)  # a fetch sent just before may be held for 2 s
    assert not p.settled(now=101.9)
    assert p.settled(now=102.0 + 2 * BUSY_WAIT_MS / 1000)


def test_a_hurry_while_hurried_does_not_push_settling_back() -> None:
    p, _ = pacer(idle_ms=2_000)
    p.hurry(60.0, now=0.0)  # waits were short already: settled after two short fetches
    p.hurry(60.0, now=1.0)
    assert p.settled(now=1.0)
