"""Canaries over events (domain.canary_state): windows of `interval` from creation, judged
after their grace; down on too few events, up again as soon as a window has enough; and the
error router's part (which batches count, for which canaries)."""

from __future__ import annotations

import msgspec

from domain.canary_state import (
    CanaryState,
    apply,
    deadline,
    evaluate,
    state_decoder,
    state_encoder,
)
from processors.agents.error_router import RoutedBatch, RoutedEvent, events_seen
from schemas.canaries import CanaryDefined, CheckIn, EventsExpected, EventsSeen

CANARY = "can_events"
CREATED = 1_750_000_000.0
INTERVAL, GRACE, MIN = 60, 10, 3


def events_canary(**changes: object) -> CanaryState:
    state = CanaryState(CANARY)
    definition = CanaryDefined(
        CANARY,
        "orders flowing",
        "0" * 64,
        INTERVAL,
        GRACE,
        ["chn_a"],
        CREATED,
        CREATED,
        events=EventsExpected("order.placed", MIN),
    )
    assert apply(state, msgspec.structs.replace(definition, **changes)) is None
    return state


def seen(count: int, at: float) -> EventsSeen:
    return EventsSeen(CANARY, count, at)


def test_a_window_with_enough_events_keeps_it_up_and_the_next_one_starts() -> None:
    state = events_canary()
    assert deadline(state) == CREATED + INTERVAL + GRACE
    assert apply(state, seen(2, CREATED + 5)) is None
    assert apply(state, seen(1, CREATED + 59)) is None
    assert apply(state, seen(2, CREATED + 61)) is None  # for the next window, judged later
    assert evaluate(state, CREATED + INTERVAL + GRACE) is None  # not yet past
    assert evaluate(state, CREATED + INTERVAL + GRACE + 0.1) is None
    assert (state.status, state.window_start, state.window_count) == ("up", CREATED + INTERVAL, 2)
    assert deadline(state) == CREATED + 2 * INTERVAL + GRACE


def test_too_few_events_put_it_down_once_and_enough_bring_it_back_at_once() -> None:
    state = events_canary()
    apply(state, seen(2, CREATED + 5))
    down = evaluate(state, CREATED + INTERVAL + GRACE + 1)
    assert down is not None and (down.status, down.reason) == ("down", "too_few_events")
    assert down.id == f"{CANARY}:down:win{int(CREATED * 1000)}"
    assert "2 of at least 3 'order.placed' events" in down.message
    assert deadline(state) is None and evaluate(state, CREATED + 10_000) is None
    # Down: the window follows the events; the third of a window brings it up.
    assert apply(state, seen(2, CREATED + 200)) is None
    assert state.window_start == CREATED + 180
    up = apply(state, seen(1, CREATED + 230))
    assert up is not None and (up.status, up.reason) == ("up", "events")
    assert deadline(state) == CREATED + 240 + GRACE


def test_events_before_the_window_or_from_check_ins_count_nothing() -> None:
    state = events_canary()
    apply(state, seen(5, CREATED - 1))
    apply(state, CheckIn("c1", CANARY, "success", CREATED + 1))
    assert state.window_count == 0 and state.last_checkin_at is None


def test_the_state_round_trips_through_the_table() -> None:
    state = events_canary()
    apply(state, seen(2, CREATED + 5))
    assert state_decoder.decode(state_encoder.encode(state)) == state


def test_the_router_counts_watched_names_per_batch_by_arrival_time() -> None:
    batch = RoutedBatch(
        "0" * 32,
        "k",
        CREATED,
        [
            RoutedEvent("event", "order.placed"),
            RoutedEvent("error", "order.placed"),
            RoutedEvent("event", "other"),
        ],
    )
    watched = {"order.placed": {"can_b", "can_a"}}
    assert events_seen(batch, watched) == [
        EventsSeen("can_a", 2, CREATED),
        EventsSeen("can_b", 2, CREATED),
    ]
    assert events_seen(batch, {}) == []
    assert events_seen(msgspec.structs.replace(batch, historical=True), watched) == []
