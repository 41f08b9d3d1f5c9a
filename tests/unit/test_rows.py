"""domain.store_rows: log records -> ClickHouse rows (events and api_keys), tested with plain data."""

from __future__ import annotations

import datetime as dt

import msgspec

from domain.store_rows import (
    EVENT_COLUMNS,
    KEY_COLUMNS,
    EventColumns,
    KeyState,
    fold_key_record,
    key_records_from_row,
    ms_ticks,
)
from schemas.ids import event_id
from schemas.limits import DEFAULT_BURST, DEFAULT_RATE_PER_MINUTE, MAX_EVENTS_PER_BATCH
from schemas.records import (
    EventBatch,
    KeyCreated,
    KeyLimitsChanged,
    KeyRevoked,
    KeyUsed,
    key_record_decoder,
    record_encoder,
)
from schemas.wire import Event, decode_batch

UTC = dt.timezone.utc
BATCH_ID = "0197c9d8a1b07c3e8a4f5b6c7d8e9f00"  # low 7 bits clear, as schemas.ids makes them
RECEIVED_AT = 1_782_986_400.25  # 2026-07-02T10:00:00.250Z
RECEIVED = dt.datetime(2026, 7, 2, 10, 0, 0, 250_000, tzinfo=UTC)


def batch_of(*events: Event) -> EventBatch:
    return EventBatch(BATCH_ID, "key_1", RECEIVED_AT, list(events))


def rows_of(columns: EventColumns) -> list[dict[str, object]]:
    return [dict(zip(EVENT_COLUMNS, row)) for row in zip(*columns.columns)]


def added(batch: EventBatch, partition: int = 2, offset: int = 17, **kw: object) -> list[dict]:
    columns = EventColumns()
    columns.add(batch, partition, offset, **kw)  # type: ignore[arg-type]
    return rows_of(columns)


# --- EventColumns ---------------------------------------------------------------------------


def test_it_adds_one_row_per_event() -> None:
    batch = batch_of(*(Event("event", f"e{i}") for i in range(MAX_EVENTS_PER_BATCH)))
    columns = EventColumns()

    columns.add(batch, 0, 0)

    assert len(columns) == MAX_EVENTS_PER_BATCH
    assert all(len(column) == MAX_EVENTS_PER_BATCH for column in columns.columns)
    names = [row["name"] for row in rows_of(columns)]
    assert names == [f"e{i}" for i in range(MAX_EVENTS_PER_BATCH)]


def test_it_gives_each_row_its_event_id() -> None:
    rows = added(batch_of(Event("event", "a"), Event("error", "b"), Event("event", "c")))

    # As the int of its UUID: clickhouse-connect writes that to a UUID column as it writes a UUID.
    assert [row["event_id"] for row in rows] == [event_id(BATCH_ID, i).int for i in range(3)]


def test_it_copies_key_type_and_name() -> None:
    (row,) = added(batch_of(Event("error", "webhook failed")))

    assert row["key_id"] == "key_1"
    assert row["type"] == "error"
    assert row["name"] == "webhook failed"


def test_it_defaults_ts_to_received_at() -> None:
    (row,) = added(batch_of(Event("event", "a")))

    assert row["ts"] == 1_782_986_400_250  # RECEIVED in DateTime64(3) ticks
    assert row["received_at"] == 1_782_986_400_250


def test_it_keeps_the_ts_the_client_sent() -> None:
    sent = dt.datetime(2026, 7, 1, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=-5)))

    (row,) = added(batch_of(Event("event", "a", ts=sent)))

    assert row["ts"] == ms_ticks(sent) == 1_782_968_340_000  # 2026-07-02T04:59Z
    assert row["received_at"] == ms_ticks(RECEIVED)


def test_it_stores_an_empty_string_for_absent_meta() -> None:
    (row,) = added(batch_of(Event("event", "a")))

    assert row["meta"] == ""


def test_it_stores_an_empty_string_for_null_meta() -> None:
    events = decode_batch(b'{"events":[{"type":"event","name":"a","meta":null}]}')

    (row,) = added(batch_of(*events))

    assert row["meta"] == ""


def test_it_stores_meta_as_the_raw_json_text_sent() -> None:
    events = decode_batch(
        '{"events":[{"type":"event","name":"a","meta":{ "plan" : "pró", "n": 1.50 }}]}'.encode()
    )

    (row,) = added(batch_of(*events))

    assert row["meta"] == '{ "plan" : "pró", "n": 1.50 }'


def test_it_stores_an_empty_string_for_no_message() -> None:
    rows = added(batch_of(Event("event", "a"), Event("error", "b", message="boom")))

    assert [row["message"] for row in rows] == ["", "boom"]


def test_it_keeps_a_missing_value_as_none() -> None:
    rows = added(batch_of(Event("event", "a"), Event("event", "b", value=0.0)))

    assert rows[0]["value"] is None
    assert rows[1]["value"] == 0.0


def test_it_sets_partition_and_offset_on_every_row() -> None:
    rows = added(batch_of(Event("event", "a"), Event("event", "b")), partition=3, offset=41)

    assert [(row["_partition"], row["_offset"]) for row in rows] == [(3, 41), (3, 41)]


def test_it_leaves_out_events_already_stored() -> None:
    batch = batch_of(*(Event("event", f"e{i}") for i in range(5)))
    skip = frozenset({event_id(BATCH_ID, 1), event_id(BATCH_ID, 3)})

    rows = added(batch, skip=skip)

    assert [row["name"] for row in rows] == ["e0", "e2", "e4"]
    assert [row["event_id"] for row in rows] == [event_id(BATCH_ID, i).int for i in (0, 2, 4)]


def test_it_ignores_skip_ids_of_other_batches() -> None:
    other = "0197c9d8a1b07c3e8a4f5b6c7d8e9f80"
    rows = added(batch_of(Event("event", "a")), skip=frozenset({event_id(other, 0)}))

    assert len(rows) == 1


def test_it_appends_batch_after_batch() -> None:
    columns = EventColumns()
    columns.add(batch_of(Event("event", "a")), 0, 1)
    other = EventBatch("0197c9d8a1b07c3e8a4f5b6c7d8e9f80", "key_2", 1.0, [Event("event", "b")])
    columns.add(other, 1, 2)

    rows = rows_of(columns)

    assert [(r["name"], r["key_id"], r["_partition"], r["_offset"]) for r in rows] == [
        ("a", "key_1", 0, 1),
        ("b", "key_2", 1, 2),
    ]


# --- api_keys rows --------------------------------------------------------------------------

CREATED_AT = 1_782_986_400.5
CREATED = KeyCreated(id="key_1", name="ci", key_hash="ab" * 32, created_at=CREATED_AT, scope="read")


def key_row(row: list[object] | None) -> dict[str, object]:
    assert row is not None
    return dict(zip(KEY_COLUMNS, row))


def test_it_makes_a_row_from_a_created_key() -> None:
    row = key_row(fold_key_record({}, CREATED))

    assert row == {
        "id": "key_1",
        "name": "ci",
        "key_hash": "ab" * 32,
        "scope": "read",
        "created_at": dt.datetime(2026, 7, 2, 10, 0, 0, 500_000, tzinfo=UTC),
        "revoked_at": None,
        "last_used_at": None,
        "rate_per_minute": DEFAULT_RATE_PER_MINUTE,
        "burst": DEFAULT_BURST,
        "version": 1_782_986_400_500,
    }


def test_it_keeps_the_newest_limits_of_a_key_and_reseeds_them() -> None:
    states: dict[str, KeyState] = {}
    fold_key_record(states, CREATED)
    fold_key_record(states, KeyLimitsChanged("key_1", 600, 50, CREATED_AT + 20))
    row = key_row(fold_key_record(states, KeyLimitsChanged("key_1", 6, 5, CREATED_AT + 10)))

    assert (row["rate_per_minute"], row["burst"]) == (600, 50)  # the older change lost
    assert row["version"] == int((CREATED_AT + 20) * 1000)
    (created,) = [r for r in key_records_from_row(row) if isinstance(r, KeyCreated)]
    assert (created.rate_per_minute, created.burst) == (600, 50)


def test_it_updates_the_whole_row_when_a_key_is_used() -> None:
    states: dict[str, KeyState] = {}
    fold_key_record(states, CREATED)

    row = key_row(fold_key_record(states, KeyUsed("key_1", CREATED_AT + 60)))

    assert row["name"] == "ci"
    assert row["key_hash"] == "ab" * 32
    assert row["scope"] == "read"
    assert row["created_at"] == dt.datetime(2026, 7, 2, 10, 0, 0, 500_000, tzinfo=UTC)
    assert row["last_used_at"] == dt.datetime(2026, 7, 2, 10, 1, 0, 500_000, tzinfo=UTC)
    assert row["revoked_at"] is None
    assert row["version"] == 1_782_986_460_500


def test_it_updates_the_whole_row_when_a_key_is_revoked() -> None:
    states: dict[str, KeyState] = {}
    fold_key_record(states, CREATED)
    fold_key_record(states, KeyUsed("key_1", CREATED_AT + 60))

    row = key_row(fold_key_record(states, KeyRevoked("key_1", CREATED_AT + 120)))

    assert row["name"] == "ci"
    assert row["last_used_at"] == dt.datetime(2026, 7, 2, 10, 1, 0, 500_000, tzinfo=UTC)
    assert row["revoked_at"] == dt.datetime(2026, 7, 2, 10, 2, 0, 500_000, tzinfo=UTC)
    assert row["version"] == 1_782_986_520_500


def test_it_versions_a_row_by_its_latest_change_not_the_latest_record() -> None:
    states: dict[str, KeyState] = {}
    fold_key_record(states, CREATED)
    fold_key_record(states, KeyUsed("key_1", CREATED_AT + 300))

    row = key_row(fold_key_record(states, KeyRevoked("key_1", CREATED_AT + 120)))

    assert row["revoked_at"] is not None
    assert row["version"] == 1_782_986_700_500  # the use, later than the revocation


def test_it_keeps_the_latest_use() -> None:
    states: dict[str, KeyState] = {}
    fold_key_record(states, CREATED)
    fold_key_record(states, KeyUsed("key_1", CREATED_AT + 60))

    row = key_row(fold_key_record(states, KeyUsed("key_1", CREATED_AT + 30)))

    assert row["last_used_at"] == dt.datetime(2026, 7, 2, 10, 1, 0, 500_000, tzinfo=UTC)
    assert row["version"] == 1_782_986_460_500


def test_it_keeps_the_first_revocation() -> None:
    states: dict[str, KeyState] = {}
    fold_key_record(states, CREATED)
    fold_key_record(states, KeyRevoked("key_1", CREATED_AT + 60))

    row = key_row(fold_key_record(states, KeyRevoked("key_1", CREATED_AT + 120)))

    assert row["revoked_at"] == dt.datetime(2026, 7, 2, 10, 1, 0, 500_000, tzinfo=UTC)


def test_it_ignores_a_second_creation_of_the_same_key() -> None:
    states: dict[str, KeyState] = {}
    fold_key_record(states, CREATED)
    fold_key_record(states, KeyRevoked("key_1", CREATED_AT + 60))

    row = key_row(
        fold_key_record(
            states, KeyCreated(id="key_1", name="other", key_hash="cd" * 32, created_at=1.0)
        )
    )

    assert row["name"] == "ci"
    assert row["revoked_at"] is not None


def test_it_returns_none_for_a_key_never_created() -> None:
    states: dict[str, KeyState] = {}

    assert fold_key_record(states, KeyUsed("key_x", CREATED_AT)) is None
    assert fold_key_record(states, KeyRevoked("key_x", CREATED_AT)) is None
    assert states == {}


def test_it_keeps_keys_apart() -> None:
    states: dict[str, KeyState] = {}
    fold_key_record(states, CREATED)
    fold_key_record(states, KeyCreated(id="key_2", name="b", key_hash="cd" * 32, created_at=2.0))

    row = key_row(fold_key_record(states, KeyRevoked("key_2", 3.0)))

    assert row["id"] == "key_2"
    assert states["key_1"].revoked_at is None


# --- re-seeding from api_keys rows --------------------------------------------------------


def clickhouse_row(row: list[object], *, naive: bool) -> dict[str, object]:
    """The dict a ClickHouse query returns for one api_keys row: naive UTC or aware UTC."""
    as_dict = dict(zip(KEY_COLUMNS, row))
    if naive:
        for column in ("created_at", "revoked_at", "last_used_at"):
            moment = as_dict[column]
            if isinstance(moment, dt.datetime):
                as_dict[column] = moment.replace(tzinfo=None)
    return as_dict


def test_it_rebuilds_a_created_key_from_a_row() -> None:
    row = clickhouse_row(fold_key_record({}, CREATED) or [], naive=True)

    assert key_records_from_row(row) == [CREATED]


def test_it_rebuilds_a_used_and_revoked_key_from_a_naive_row() -> None:
    states: dict[str, KeyState] = {}
    fold_key_record(states, CREATED)
    fold_key_record(states, KeyUsed("key_1", CREATED_AT + 60))
    last = fold_key_record(states, KeyRevoked("key_1", CREATED_AT + 120))

    records = key_records_from_row(clickhouse_row(last or [], naive=True))

    assert records == [
        CREATED,
        KeyUsed("key_1", CREATED_AT + 60),
        KeyRevoked("key_1", CREATED_AT + 120),
    ]


def test_it_rebuilds_a_key_from_an_aware_utc_row() -> None:
    states: dict[str, KeyState] = {}
    fold_key_record(states, CREATED)
    last = fold_key_record(states, KeyRevoked("key_1", CREATED_AT + 120))

    records = key_records_from_row(clickhouse_row(last or [], naive=False))

    assert records == [CREATED, KeyRevoked("key_1", CREATED_AT + 120)]


def test_it_rebuilds_the_same_row_from_the_rebuilt_records() -> None:
    states: dict[str, KeyState] = {}
    fold_key_record(states, CREATED)
    fold_key_record(states, KeyRevoked("key_1", CREATED_AT + 120))
    original = fold_key_record(states, KeyUsed("key_1", CREATED_AT + 60))

    reseeded: dict[str, KeyState] = {}
    row = None
    for record in key_records_from_row(clickhouse_row(original or [], naive=True)):
        row = fold_key_record(reseeded, record)

    assert row == original


def test_it_rebuilds_records_that_survive_the_log_encoding() -> None:
    row = clickhouse_row(fold_key_record({}, CREATED) or [], naive=True)

    for record in key_records_from_row(row):
        assert key_record_decoder.decode(record_encoder.encode(record)) == record
        assert msgspec.json.decode(record_encoder.encode(record))["kind"] == "key.created"


def test_ms_ticks_are_what_clickhouse_connect_makes_of_a_datetime() -> None:
    from clickhouse_connect.datatypes.registry import get_from_name

    column = get_from_name("DateTime64(3, 'UTC')")
    moments = [
        RECEIVED,
        dt.datetime(2026, 7, 1, 23, 59, 59, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(1970, 1, 1, tzinfo=UTC),
        dt.datetime(1969, 12, 31, 23, 59, 59, 500_500, tzinfo=UTC),
        dt.datetime(2030, 2, 3, 4, 5, 6, 7_891),  # naive: local time, as clickhouse-connect
    ]
    assert [ms_ticks(m) for m in moments] == [column._datetime64_ticks(m) for m in moments]


# --- canaries: definitions re-seeded from the control table, check-ins with run ids ----------
def test_a_cron_canary_with_thresholds_survives_the_control_table_and_reseeding() -> None:
    from domain.store_rows import checkin_rows, control_rows
    from schemas.canaries import CanaryDefined, CheckIn, CheckIns, FailureRate
    from schemas.control import control_decoder
    from schemas.records import record_encoder

    canary = CanaryDefined(
        id="can_00000000000000ee", name="nightly", token_hash="0" * 64, interval_s=0, grace_s=60,
        channels=["chn_a"], created_at=1.5, changed_at=2.5, max_runtime_s=600,
        schedule="30 2 * * *", timezone="Europe/Paris", start_margin_s=120, failure_threshold=3,
        recovery_threshold=2, failure_rate=FailureRate(failures=2, runs=5), slug="db-backup",
    )  # fmt: skip
    raw = record_encoder.encode(canary)
    ((record_id, kind, text, deleted, version),) = control_rows(canary, raw)
    assert (record_id, kind, deleted, version) == (canary.id, "canary", False, 2500)
    # The store writes `text` back onto an empty log (processors.sinks.control_sink): every field.
    assert control_decoder.decode(text.encode()) == canary

    checkins = CheckIns(
        [
            CheckIn("c1", canary.id, "start", 10.0, "", "run-1"),
            CheckIn("c2", canary.id, "log", 11.0, "hi"),
        ]
    )
    # Through the log's encoding, as the store reads it.
    rows = checkin_rows(msgspec.json.decode(record_encoder.encode(checkins), type=CheckIns))
    assert [row[-1] for row in rows] == ["run-1", ""]
    assert [row[2] for row in rows] == ["start", "log"]


def test_a_changed_channel_is_a_newer_version_of_its_id() -> None:
    """PATCH /api/v1/admin/channels/<id> writes the same id again: the control table
    (ReplacingMergeTree by version) must keep the change, which a restart writes back."""
    from domain.store_rows import control_rows
    from schemas.canaries import ChannelDefined, WebhookConfig
    from schemas.records import record_encoder

    made = ChannelDefined("chn_1", "pager", WebhookConfig("https://x.test/h"), 100.0)
    changed = msgspec.structs.replace(made, remind_every_s=60, changed_at=100.5)
    ((*_, first),) = control_rows(made, record_encoder.encode(made))
    ((*_, second),) = control_rows(changed, record_encoder.encode(changed))
    assert (first, second) == (100_000, 100_500)
