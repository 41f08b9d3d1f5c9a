"""The dead man's switch, as pure functions with an explicit `now`.

A canary must check in at least every `interval`; once `interval + grace` have passed since
the start of its current period (its last check-in, or its creation, resumption or
restoration), it is down ("missed"). `/fail` puts it down at once ("failed"); a `/start`
not followed by a success or failure within `max_runtime` puts it down too
("runtime_exceeded"). The next success brings it back up. Each change of status is one Flip,
whose id is derived from what caused it, so a flip computed twice (a replay after a worker
crash) is recognisably the same flip downstream.
"""

from __future__ import annotations

import msgspec

from schemas.canaries import (
    CanaryDefined,
    CanaryDeleted,
    CanaryStatus,
    CheckIn,
    Flip,
    FlipReason,
    HeartbeatRecord,
    StateRestored,
    Tick,
)


class CanaryState(msgspec.Struct):
    """A canary's heartbeat state, as kept in the heartbeats table (msgspec JSON bytes)."""

    canary_id: str
    definition: CanaryDefined | None = None
    deleted: bool = False
    status: str = "new"  # new | up | down (paused is the definition's flag)
    period_start: float = 0.0  # creation, resumption or restoration
    last_checkin_at: float | None = None
    last_message: str = ""
    started_at: float | None = None  # a run in progress (/start not yet finished)


state_encoder = msgspec.json.Encoder()
state_decoder = msgspec.json.Decoder(CanaryState)


def period_base(state: CanaryState) -> float:
    return max(state.last_checkin_at or 0.0, state.period_start)


def next_due_at(state: CanaryState) -> float | None:
    if state.definition is None:
        return None
    return period_base(state) + state.definition.interval_s


def deadline(state: CanaryState) -> float | None:
    """When the canary goes down unless it checks in (None: it cannot go down now)."""
    d = state.definition
    if d is None or d.paused or state.deleted or state.status == "down":
        return None
    due = period_base(state) + d.interval_s + d.grace_s
    if state.started_at is not None and d.max_runtime_s is not None:
        due = min(due, state.started_at + d.max_runtime_s)
    return due


def status_at(state: CanaryState, now: float) -> CanaryStatus:
    """The status a user sees: new, up, late (in its grace period), down or paused."""
    d = state.definition
    if d is not None and d.paused:
        return "paused"
    if state.status == "down":
        return "down"
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
        elif previous.paused and not record.paused:
            # Resumed: a fresh period, and no verdict carried over from before the pause.
            state.period_start = record.changed_at
            state.status = "up" if state.last_checkin_at is not None else "new"
            state.started_at = None
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
        state.period_start = max(state.period_start, record.at)
        return None
    return _apply_checkin(state, record)


def _apply_checkin(state: CanaryState, checkin: CheckIn) -> Flip | None:
    if checkin.message:
        state.last_message = checkin.message
    if checkin.kind == "start":
        state.started_at = checkin.at
        return None
    state.started_at = None
    state.last_checkin_at = max(state.last_checkin_at or 0.0, checkin.at)
    if checkin.kind == "fail":
        if state.status == "down" or not _can_flip(state):
            state.status = "down" if _can_flip(state) else state.status
            return None
        state.status = "down"
        return _flip(state, "down", "failed", checkin.at, checkin.id)
    if state.status == "down" and _can_flip(state):
        state.status = "up"
        return _flip(state, "up", "checkin", checkin.at, checkin.id)
    state.status = "up"
    return None


def evaluate(state: CanaryState, now: float) -> Flip | None:
    """The timer's check: a canary past its deadline goes down, once."""
    due = deadline(state)
    if due is None or now <= due:
        return None
    d = state.definition
    assert d is not None
    runtime_due = (
        state.started_at + d.max_runtime_s
        if state.started_at is not None and d.max_runtime_s is not None
        else None
    )
    state.status = "down"
    if runtime_due is not None and due == runtime_due:
        return _flip(state, "down", "runtime_exceeded", now, f"rt{int(state.started_at * 1000)}")  # type: ignore[operator]
    return _flip(state, "down", "missed", now, f"due{int(due * 1000)}")
