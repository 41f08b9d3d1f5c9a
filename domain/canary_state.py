"""The dead man's switch, as pure functions with an explicit `now`.

A canary must check in at least every `interval`; once `interval + grace` have passed since
the start of its current period (its last check-in, or its creation, resumption or
restoration), it is down ("missed"). `/fail` puts it down at once ("failed"); a `/start`
not followed by a success or failure within `max_runtime` puts it down too
("runtime_exceeded"). The next success brings it back up. Each change of status is one Flip,
whose id is derived from what caused it, so a flip computed twice (a replay after a worker
crash) is recognisably the same flip downstream.

A cron canary (its definition has `schedule`) is due at the first slot of its schedule after
its period start or last check-in, instead of `interval` after it: a check-in before a slot
does not count for it. With `start_margin`, a run must start within that margin after the
slot ("not_started"), then only `max_runtime` bounds it. `failure_threshold` consecutive
failures (a miss counts as one) put a canary down, `recovery_threshold` consecutive successes
bring it back up, and with `failure_rate` so do `failures` of the last `runs` ("failure_rate");
a miss below the threshold only moves the canary on to its next slot. `log` check-ins carry a
message and change nothing.

A canary over events (its definition has `events`) counts, instead of check-ins, the events
of one name arriving in consecutive windows of `interval` from its creation. When a window
has ended and `grace` has passed, it is judged: fewer than `min_count` events and the canary
goes down ("too_few_events"). While down, it comes back up as soon as the window in progress
has its `min_count` ("events"). Events arriving during the grace period for the next window
are kept for it.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from domain.abnormal_runs import early_verdict, run_verdict
from domain.schedule import next_slot
from schemas.canaries import (
    CanaryDefined,
    CanaryDeleted,
    CanaryStatus,
    CheckIn,
    CheckIns,
    EventsSeen,
    Flip,
    FlipReason,
    HeartbeatRecord,
    StateRestored,
    Tick,
)


class CanaryState(msgspec.Struct, omit_defaults=True):  # compact: written per check-in
    """A canary's heartbeat state, as kept in the heartbeats table (msgspec JSON bytes)."""

    canary_id: str
    definition: CanaryDefined | None = None
    deleted: bool = False
    status: str = "new"  # new | up | down (paused is the definition's flag)
    period_start: float = 0.0  # creation, resumption or restoration
    last_checkin_at: float | None = None
    last_message: str = ""
    started_at: float | None = None  # a run in progress (/start not yet finished)
    started_rid: str = ""  # its run id, if it gave one
    failures: int = 0  # consecutive failures and misses
    successes: int = 0  # consecutive successes
    outcomes: list[bool] = []  # the last runs, True for a failure (with failure_rate only)
    last_success_at: float | None = None
    durations: list[float] = []  # of the last normal runs (with `abnormal` only)
    # Canaries over events: the window being counted, its count, and the count of events
    # that arrived for the windows after it before it was judged.
    window_start: float = 0.0
    window_count: int = 0
    later_count: int = 0
    # Why its last down flip was held (domain.holds), so that its recovery is held too.
    held: str = ""


state_encoder = msgspec.json.Encoder()
state_decoder = msgspec.json.Decoder(CanaryState)


def period_base(state: CanaryState) -> float:
    return max(state.last_checkin_at or 0.0, state.period_start)


def next_due_at(state: CanaryState) -> float | None:
    if state.definition is None:
        return None
    if state.definition.events is not None:
        return state.window_start + state.definition.interval_s
    if state.definition.schedule is not None:
        return next_slot(state.definition.schedule, state.definition.timezone, period_base(state))
    return period_base(state) + state.definition.interval_s


def deadline(state: CanaryState) -> float | None:
    """When the canary goes down unless it checks in (None: it cannot go down now)."""
    d = state.definition
    if d is None or d.paused or state.deleted or state.status == "down":
        return None
    if d.events is not None:
        return state.window_start + d.interval_s + d.grace_s
    slot = next_due_at(state)
    if slot is None:
        return None  # a schedule with no slot left
    if d.start_margin_s is not None:
        if state.started_at is None:
            return slot + d.start_margin_s
        if d.max_runtime_s is not None:
            return state.started_at + d.max_runtime_s
    due = slot + d.grace_s
    if state.started_at is not None and d.max_runtime_s is not None:
        due = min(due, state.started_at + d.max_runtime_s)
    return due


def restart(state: CanaryState, at: float) -> None:
    """A fresh period (or window of events) from `at`: the end of a maintenance window its
    deadline fell in (domain.holds); a run in progress then is given up on."""
    d = state.definition
    if d is not None and d.events is not None:
        if at > state.window_start:
            _fresh_window(state, at)
        return
    state.period_start = max(state.period_start, at)
    state.started_at, state.started_rid = None, ""


def status_at(state: CanaryState, now: float) -> CanaryStatus:
    """The status a user sees: new, up, late (in its grace period), down or paused."""
    d = state.definition
    if d is not None and d.paused:
        return "paused"
    if state.status == "down":
        return "down"
    if d is not None and d.events is not None:
        return "up" if state.status == "up" else "new"
    due = next_due_at(state)
    if due is not None and now > due:
        return "late"
    return "new" if state.last_checkin_at is None else "up"


def _flip(state: CanaryState, status: str, reason: FlipReason, at: float, cause: str) -> Flip:
    d = state.definition
    return Flip(
        id=f"{state.canary_id}:{status}:{cause}",
        canary_id=state.canary_id,
        canary_name=d.name if d else state.canary_id,
        status=status,  # type: ignore[arg-type]
        reason=reason,
        at=at,
        last_checkin_at=state.last_checkin_at,
        message=state.last_message,
        channels=list(d.channels) if d else [],
    )


def _can_flip(state: CanaryState) -> bool:
    d = state.definition
    return d is not None and not d.paused and not state.deleted


def apply(state: CanaryState, record: HeartbeatRecord) -> Flip | None:
    """Fold one record of the canary's stream into its state; the flip it causes, if any."""
    if isinstance(record, CanaryDefined):
        previous = state.definition
        if previous is not None and record.changed_at < previous.changed_at:
            return None  # an older definition seen again (a replay): the newer one stands
        state.definition = record
        state.deleted = False
        if previous is None:
            state.period_start = max(state.period_start, record.created_at)
            state.window_start = max(state.window_start, record.created_at)
        elif previous.paused and not record.paused:
            # Resumed: a fresh period, and no verdict carried over from before the pause.
            state.period_start = record.changed_at
            state.status = "up" if state.last_checkin_at is not None else "new"
            state.started_at = None
            state.failures, state.successes, state.outcomes = 0, 0, []
            _fresh_window(state, record.changed_at)
        return None
    if isinstance(record, CanaryDeleted):
        state.deleted = True
        return None
    if isinstance(record, Tick):
        return None  # stream time, handled by the agent
    if isinstance(record, StateRestored):
        state.status = record.status
        state.last_checkin_at = record.last_checkin_at
        state.last_message = record.last_message
        state.held = record.held if record.status == "down" else ""
        state.period_start = max(state.period_start, record.at)
        if record.at > state.window_start:
            _fresh_window(state, record.at)
        return None
    if isinstance(record, EventsSeen):
        return _apply_events(state, record)
    if isinstance(record, CheckIns):  # a group: its caller unpacks it (schemas.canaries.unpacked)
        raise TypeError("apply takes the check-ins of a group one by one")
    return _apply_checkin(state, record)


def _fresh_window(state: CanaryState, start: float) -> None:
    state.window_start, state.window_count, state.later_count = start, 0, 0


def _apply_events(state: CanaryState, seen: EventsSeen) -> Flip | None:
    d = state.definition
    if d is None or d.events is None or state.deleted:
        return None
    if seen.at < state.window_start:
        return None  # before the window being counted (judged already, or before creation)
    end = state.window_start + d.interval_s
    if state.status != "down":
        if seen.at < end:
            state.window_count += seen.count
        else:
            state.later_count += seen.count  # for the windows after, once this one is judged
        return None
    # Down: no verdict is pending, so the window simply follows the events' time.
    if seen.at >= end:
        windows = (seen.at - state.window_start) // d.interval_s
        _fresh_window(state, state.window_start + windows * d.interval_s)
    state.window_count += seen.count
    if state.window_count < d.events.min_count or d.paused:
        return None
    state.status = "up"
    return _flip(state, "up", "events", seen.at, f"win{int(state.window_start * 1000)}")


def _judge_window(state: CanaryState, now: float) -> Flip | None:
    """The window ended (and its grace passed): enough events, or down."""
    d = state.definition
    assert d is not None and d.events is not None
    start, counted = state.window_start, state.window_count
    state.window_start += d.interval_s
    state.window_count, state.later_count = state.later_count, 0
    if counted >= d.events.min_count:
        state.status = "up"
        return None
    state.status = "down"
    since = dt.datetime.fromtimestamp(start, dt.UTC).isoformat(timespec="seconds")
    state.last_message = (
        f"{counted} of at least {d.events.min_count} {d.events.name!r} events"
        f" in the {d.interval_s} s from {since.replace('+00:00', 'Z')}"
    )
    return _flip(state, "down", "too_few_events", now, f"win{int(start * 1000)}")


def _apply_checkin(state: CanaryState, checkin: CheckIn) -> Flip | None:
    if state.definition is not None and state.definition.events is not None:
        return None  # a canary over events has no check-ins (the API gives it no token)
    if checkin.kind == "log":
        return None
    if checkin.message:
        state.last_message = checkin.message
    if checkin.kind == "start":
        state.started_at, state.started_rid = checkin.at, checkin.rid
        return None
    run_started = None
    if not (checkin.rid and state.started_rid and checkin.rid != state.started_rid):
        run_started = state.started_at
        state.started_at, state.started_rid = None, ""  # else another run is still going
    state.last_checkin_at = max(state.last_checkin_at or 0.0, checkin.at)
    d = state.definition
    abnormal = None
    if checkin.kind == "success":
        if d is not None and d.abnormal is not None:
            abnormal = _abnormal(state, d, run_started, checkin.at)
        state.last_success_at = max(state.last_success_at or 0.0, checkin.at)
    if checkin.kind == "fail" or abnormal is not None:
        if abnormal is not None:
            state.last_message = abnormal[1]  # the alert says why
        reason = _count_failure(state)
        if state.status == "down" or not _can_flip(state):
            state.status = "down" if _can_flip(state) else state.status
            return None
        if reason is None:
            return None  # below its thresholds: stays up
        state.status = "down"
        counted: FlipReason = abnormal[0] if abnormal is not None else "failed"
        return _flip(
            state, "down", counted if reason == "count" else "failure_rate", checkin.at, checkin.id
        )
    _count_success(state)
    if state.status == "down" and _can_flip(state):
        if d is not None and state.successes < d.recovery_threshold:
            return None
        state.status = "up"
        state.outcomes = []  # recovered: a fresh window of runs
        return _flip(state, "up", "checkin", checkin.at, checkin.id)
    state.status = "up"
    return None


def _abnormal(
    state: CanaryState, d: CanaryDefined, run_started: float | None, at: float
) -> tuple[FlipReason, str] | None:
    """Whether a success is abnormal (domain.abnormal_runs); a normal run's duration joins the
    canary's history."""
    assert d.abnormal is not None
    early = early_verdict(d, state.last_success_at, at)
    if early is not None:
        return "too_early", early
    if run_started is None:
        return None
    took = at - run_started
    verdict = run_verdict(d.abnormal, state.durations, took)
    if verdict is None:
        state.durations = [*state.durations, took][-d.abnormal.history :]
    return verdict


def _count_success(state: CanaryState) -> None:
    state.failures, state.successes = 0, state.successes + 1
    _remember_outcome(state, False)


def _count_failure(state: CanaryState) -> str | None:
    """Count a failure or miss; "count" or "rate" if that puts the canary down, else None."""
    state.failures, state.successes = state.failures + 1, 0
    _remember_outcome(state, True)
    d = state.definition
    if d is None or state.failures >= d.failure_threshold:
        return "count"
    if d.failure_rate is not None and sum(state.outcomes) >= d.failure_rate.failures:
        return "rate"
    return None


def _remember_outcome(state: CanaryState, failed: bool) -> None:
    d = state.definition
    if d is not None and d.failure_rate is not None:
        state.outcomes = [*state.outcomes, failed][-d.failure_rate.runs :]


def evaluate(state: CanaryState, now: float) -> Flip | None:
    """The timer's check: a canary past its deadline goes down, once."""
    due = deadline(state)
    if due is None or now <= due:
        return None
    d = state.definition
    assert d is not None
    if d.events is not None:
        return _judge_window(state, now)
    runtime_due = (
        state.started_at + d.max_runtime_s
        if state.started_at is not None and d.max_runtime_s is not None
        else None
    )
    overran = runtime_due is not None and due == runtime_due
    slot = next_due_at(state)
    counted = _count_failure(state)
    if counted is None:
        # Below its thresholds: the miss is counted, and the canary is due at its next slot
        # (an overrun run is given up on instead).
        if overran:
            state.started_at, state.started_rid = None, ""
        elif slot is not None:
            state.period_start = max(state.period_start, slot)
        return None
    state.status = "down"
    if overran:
        reason: FlipReason = "runtime_exceeded"
        cause = f"rt{int(state.started_at * 1000)}"  # type: ignore[operator]
    else:
        not_started = d.start_margin_s is not None and state.started_at is None
        reason = "not_started" if not_started else "missed"
        cause = f"due{int(due * 1000)}"
    return _flip(state, "down", "failure_rate" if counted == "rate" else reason, now, cause)
