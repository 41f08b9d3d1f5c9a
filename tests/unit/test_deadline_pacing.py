"""How long the worker's deadline loop sleeps (processors.agents.canary_agent.next_check_s)."""

from __future__ import annotations

from processors.agents.canary_agent import (
    CHECK_EVERY_S,
    HURRY_LEAD_S,
    IDLE_CHECK_S,
    next_check_s,
)


def test_it_looks_often_from_the_hurry_lead_before_a_deadline() -> None:
    assert next_check_s(100.0 + HURRY_LEAD_S, 100.0, unwritten=False) == CHECK_EVERY_S
    assert next_check_s(99.0, 100.0, unwritten=False) == CHECK_EVERY_S  # overdue: ticking


def test_it_looks_often_while_changed_states_wait_to_be_written() -> None:
    assert next_check_s(None, 100.0, unwritten=True) == CHECK_EVERY_S
    assert next_check_s(10_000.0, 100.0, unwritten=True) == CHECK_EVERY_S


def test_an_idle_worker_looks_once_a_second() -> None:
    assert next_check_s(None, 100.0, unwritten=False) == IDLE_CHECK_S
    assert next_check_s(10_000.0, 100.0, unwritten=False) == IDLE_CHECK_S


def test_it_wakes_in_time_for_the_hurry_lead() -> None:
    wait = next_check_s(100.0 + HURRY_LEAD_S + 0.5, 100.0, unwritten=False)
    assert CHECK_EVERY_S <= wait <= 0.5
