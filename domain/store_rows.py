"""Log records -> ClickHouse rows. Pure: no I/O, no clock."""

from __future__ import annotations

import datetime as dt
import math
import uuid

from schemas.canaries import (
    CanaryDefined,
    CanaryDeleted,
    ChannelDefined,
    ChannelDeleted,
    CheckIn,
    DeliveryAttempt,
    Flip,
    HeartbeatRecord,
    Incident,
    IncidentAcknowledged,
    unpacked,
)
from schemas.control import ControlRecord
from schemas.quiet import SilenceDefined, WindowDefined
from schemas.records import (
    EventBatch,
    KeyCreated,
    KeyLimitsChanged,
    KeyRecord,
    KeyRevoked,
    KeyUsed,
    Rejections,
)
from schemas.routing import RouteDefined, RouteDeleted

UTC = dt.UTC

EVENT_COLUMNS = (
    "event_id",
    "key_id",
    "type",
    "name",
    "message",
    "value",
    "meta",
    "ts",
    "received_at",
    "_partition",
    "_offset",
)

KEY_COLUMNS = (
    "id",
    "name",
    "key_hash",
    "scope",
    "created_at",
    "revoked_at",
    "last_used_at",
    "rate_per_minute",
    "burst",
    "version",
)

REJECTION_COLUMNS = ("id", "origin", "start", "end", "key_id", "reason", "requests", "events")


def ms_ticks(moment: dt.datetime) -> int:
    """A DateTime64(3) value as clickhouse-connect computes it from a datetime (an aware one
    by its offset, a naive one in local time, sub-millisecond digits dropped): given ints, it
    writes them as they are, instead of converting each datetime in Python."""
    return math.floor(moment.timestamp()) * 1000 + moment.microsecond // 1000


class EventColumns:
    """Column-oriented rows of the `events` table, appended batch by batch."""

    def __init__(self) -> None:
        self.columns: tuple[list[object], ...] = tuple([] for _ in EVENT_COLUMNS)

    def __len__(self) -> int:
        return len(self.columns[0])

    def add(
        self,
        batch: EventBatch,
        partition: int,
        offset: int,
        skip: frozenset[uuid.UUID] = frozenset(),
    ) -> None:
        """Append the batch's events; ids in `skip` (already stored) are left out. All or
        nothing: a batch that cannot be mapped raises and leaves the columns as they were."""
        base = int(batch.batch_id, 16)
        received = ms_ticks(dt.datetime.fromtimestamp(batch.received_at, UTC))
        skipped = {stored.int for stored in skip} if skip else None
        # Column by column, event ids as ints (clickhouse-connect writes an int to a UUID
        # column as it writes a UUID's .int): a uuid.UUID per event was half this loop's cost.
        ids: list[int] = []
        types: list[str] = []
        names: list[str] = []
        messages: list[str] = []
        values: list[float | None] = []
        metas: list[str] = []
        times: list[int] = []  # `ts` and `received_at` as DateTime64(3) ticks (ms_ticks)
        for index, event in enumerate(batch.events):
            event_id = base | index
            if skipped and event_id in skipped:
                continue
            meta = bytes(event.meta)
            metas.append("" if meta == b"null" else meta.decode())
            ids.append(event_id)
            types.append(event.type)
            names.append(event.name)
            messages.append(event.message or "")
            values.append(event.value)
            times.append(received if event.ts is None else ms_ticks(event.ts))
        n = len(ids)
        if not n:
            return
        (
            c_id,
            c_key,
            c_type,
            c_name,
            c_message,
            c_value,
            c_meta,
            c_ts,
            c_received,
            c_partition,
            c_offset,
        ) = self.columns
        c_id.extend(ids)
        c_key.extend([batch.key_id] * n)
        c_type.extend(types)
        c_name.extend(names)
        c_message.extend(messages)
        c_value.extend(values)
        c_meta.extend(metas)
        c_ts.extend(times)
        c_received.extend([received] * n)
        c_partition.extend([partition] * n)
        c_offset.extend([offset] * n)


def _utc(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, UTC)


def _epoch(moment: object) -> float | None:
    if not isinstance(moment, dt.datetime):
        return None
    return moment.replace(tzinfo=UTC).timestamp()


def fold_key_record(states: dict[str, KeyState], record: KeyRecord) -> list[object] | None:
    """Apply a key record to the per-key states; return the key's api_keys row, or None if the
    record names a key never created."""
    state: KeyState | None
    if isinstance(record, KeyCreated):
        state = states.setdefault(record.id, KeyState(record))
    else:
        state = states.get(record.id)
        if state is None:
            return None
        if isinstance(record, KeyRevoked):
            state.revoked_at = state.revoked_at or record.revoked_at
        elif isinstance(record, KeyUsed):
            state.last_used_at = max(state.last_used_at or 0.0, record.last_used_at)
        elif isinstance(record, KeyLimitsChanged):
            if record.changed_at >= state.limits_changed_at:
                state.limits = (record.rate_per_minute, record.burst)
                state.limits_changed_at = record.changed_at
    created = state.created
    changed = max(
        created.created_at,
        state.revoked_at or 0.0,
        state.last_used_at or 0.0,
        state.limits_changed_at,
    )
    return [
        created.id,
        created.name,
        created.key_hash,
        created.scope,
        _utc(created.created_at),
        _utc(state.revoked_at),
        _utc(state.last_used_at),
        state.limits[0],
        state.limits[1],
        int(changed * 1000),
    ]


class KeyState:
    def __init__(self, created: KeyCreated) -> None:
        self.created = created
        self.revoked_at: float | None = None
        self.last_used_at: float | None = None
        self.limits = (created.rate_per_minute, created.burst)
        self.limits_changed_at = 0.0


def key_records_from_row(row: dict[str, object]) -> list[KeyRecord]:
    """The records that rebuild one api_keys row on an empty log (re-seeding)."""
    key_id = str(row["id"])
    records: list[KeyRecord] = [
        KeyCreated(
            id=key_id,
            name=str(row["name"]),
            key_hash=str(row["key_hash"]),
            created_at=_epoch(row["created_at"]) or 0.0,
            scope=row["scope"],  # type: ignore[arg-type]
            rate_per_minute=int(row["rate_per_minute"]),  # type: ignore[call-overload]
            burst=int(row["burst"]),  # type: ignore[call-overload]
        )
    ]
    last_used_at = _epoch(row["last_used_at"])
    if last_used_at is not None:
        records.append(KeyUsed(key_id, last_used_at))
    revoked_at = _epoch(row["revoked_at"])
    if revoked_at is not None:
        records.append(KeyRevoked(key_id, revoked_at))
    return records


def rejection_rows(record: Rejections) -> list[list[object]]:
    start, end = _utc(record.start), _utc(record.end)
    return [
        [record.id, record.origin, start, end, c.key_id, c.reason, c.requests, c.events]
        for c in record.counts
    ]


CHECKIN_COLUMNS = ("id", "canary_id", "kind", "at", "message", "rid")
FLIP_COLUMNS = ("id", "canary_id", "canary_name", "status", "reason", "at", "held")
ATTEMPT_COLUMNS = ("flip_id", "channel_id", "channel_kind", "attempt", "at", "ok", "detail")
CONTROL_COLUMNS = ("id", "kind", "record", "deleted", "version")


def checkin_rows(record: HeartbeatRecord) -> list[list[object]]:
    """Only check-ins are history; definitions and restorations on that topic are not."""
    return [
        [c.id, c.canary_id, c.kind, _utc(c.at), c.message, c.rid]
        for c in unpacked(record)
        if isinstance(c, CheckIn)
    ]


def flip_rows(flip: Flip) -> list[list[object]]:
    f = flip
    return [[f.id, f.canary_id, f.canary_name, f.status, f.reason, _utc(f.at), f.held]]


def attempt_rows(a: DeliveryAttempt) -> list[list[object]]:
    return [[a.flip_id, a.channel_id, a.channel_kind, a.attempt, _utc(a.at), a.ok, a.detail]]


def control_rows(record: ControlRecord, raw: bytes) -> list[list[object]]:
    """The latest state of a canary, channel or route, as the record that re-creates it."""
    if isinstance(record, CanaryDefined):
        return [[record.id, "canary", raw.decode(), False, int(record.changed_at * 1000)]]
    if isinstance(record, ChannelDefined):
        # A changed channel is a newer version of the same id (ReplacingMergeTree keeps it).
        version = int(max(record.created_at, record.changed_at) * 1000)
        return [[record.id, "channel", raw.decode(), False, version]]
    if isinstance(record, RouteDefined):
        return [[record.id, "route", raw.decode(), False, int(record.changed_at * 1000)]]
    if isinstance(record, WindowDefined | SilenceDefined):  # ended, never deleted
        kind = "window" if isinstance(record, WindowDefined) else "silence"
        return [[record.id, kind, raw.decode(), False, int(record.changed_at * 1000)]]
    if isinstance(record, Incident):  # a closed one is not written back at restart
        return [[record.id, "incident", raw.decode(), record.closed, int(record.changed_at * 1000)]]
    if isinstance(record, IncidentAcknowledged):
        return [[record.id, "ack", raw.decode(), False, int(record.at * 1000)]]
    kind = {CanaryDeleted: "canary", ChannelDeleted: "channel", RouteDeleted: "route"}[type(record)]
    return [[record.id, kind, raw.decode(), True, int(record.deleted_at * 1000)]]
