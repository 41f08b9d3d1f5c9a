"""schemas.wire.decode_batch: the ingest body contract (specs/ingest-api.txt), one rule a test."""

from __future__ import annotations

import datetime as dt
import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.limits import MAX_EVENTS_PER_BATCH, MESSAGE_MAX_CHARS, META_MAX_BYTES, NAME_MAX_CHARS
from schemas.wire import TS_MAX, TS_MIN, Event, InvalidBatch, decode_batch

GOOD = b'{"type":"event","name":"ok"}'
BAD_INDEX = 3


def batch_with(event: bytes, index: int = BAD_INDEX) -> bytes:
    """A body whose event at `index` is `event` (raw JSON) and whose others are valid."""
    return b'{"events":[' + b",".join([GOOD] * index + [event]) + b"]}"


def event_json(**fields: object) -> bytes:
    return json.dumps({"type": "event", "name": "n", **fields}).encode()


def meta_of_size(size: int) -> bytes:
    """A JSON object exactly `size` bytes long, as sent."""
    raw = b'{"k":"' + b"x" * (size - 8) + b'"}'
    assert len(raw) == size
    return raw


def refusal(body: bytes) -> str:
    with pytest.raises(InvalidBatch) as caught:
        decode_batch(body)
    return str(caught.value)


AT_BAD_EVENT = f"$.events[{BAD_INDEX}]"


# --- accepted bodies ----------------------------------------------------------------------


def test_it_accepts_a_minimal_batch() -> None:
    (event,) = decode_batch(b'{"events":[{"type":"event","name":"signup"}]}')

    assert event.type == "event"
    assert event.name == "signup"
    assert event.message is None
    assert event.value is None
    assert bytes(event.meta) == b""
    assert event.ts is None


def test_it_accepts_the_example_from_the_spec() -> None:
    body = b"""{  "events": [
        { "type": "event", "name": "signup" },
        { "type": "event", "name": "payment", "value": 29, "meta": { "plan": "pro" } },
        { "type": "error", "name": "webhook failed", "message": "timeout after 3 retries" }
    ]}"""

    signup, payment, failure = decode_batch(body)

    assert (signup.type, signup.name) == ("event", "signup")
    assert payment.value == 29.0
    assert bytes(payment.meta) == b'{ "plan": "pro" }'  # verbatim, as the client sent it
    assert (failure.type, failure.name, failure.message) == (
        "error",
        "webhook failed",
        "timeout after 3 retries",
    )


def test_it_accepts_every_optional_field() -> None:
    (event,) = decode_batch(
        b'{"events":[{"type":"error","name":"n","message":"m","value":-1.5,'
        b'"meta":{"a":[1,2]},"ts":"2026-07-02T10:00:00+02:00"}]}'
    )

    assert event.message == "m"
    assert event.value == -1.5
    assert bytes(event.meta) == b'{"a":[1,2]}'
    assert event.ts == dt.datetime(2026, 7, 2, 8, 0, tzinfo=dt.timezone.utc)


def test_it_accepts_exactly_the_maximum_number_of_events() -> None:
    body = b'{"events":[' + b",".join([GOOD] * MAX_EVENTS_PER_BATCH) + b"]}"

    assert len(decode_batch(body)) == MAX_EVENTS_PER_BATCH


def test_it_accepts_a_name_of_exactly_the_limit() -> None:
    (event,) = decode_batch(batch_with(event_json(name="x" * NAME_MAX_CHARS), index=0))

    assert len(event.name) == NAME_MAX_CHARS


def test_it_counts_the_name_limit_in_characters_not_bytes() -> None:
    (event,) = decode_batch(batch_with(event_json(name="é" * NAME_MAX_CHARS), index=0))

    assert event.name == "é" * NAME_MAX_CHARS


def test_it_accepts_a_message_of_exactly_the_limit() -> None:
    (event,) = decode_batch(batch_with(event_json(message="m" * MESSAGE_MAX_CHARS), index=0))

    assert len(event.message or "") == MESSAGE_MAX_CHARS


def test_it_accepts_meta_of_exactly_the_byte_limit() -> None:
    meta = meta_of_size(META_MAX_BYTES)
    body = batch_with(b'{"type":"event","name":"n","meta":' + meta + b"}", index=0)

    (event,) = decode_batch(body)

    assert bytes(event.meta) == meta


def test_it_accepts_null_meta_as_no_meta() -> None:
    (event,) = decode_batch(batch_with(b'{"type":"event","name":"n","meta":null}', index=0))

    assert bytes(event.meta) in (b"", b"null")


@pytest.mark.parametrize("field", ["message", "value", "ts"])
def test_it_accepts_null_for_an_optional_field(field: str) -> None:
    (event,) = decode_batch(batch_with(event_json(**{field: None}), index=0))

    assert getattr(event, field) is None


def test_it_accepts_an_integer_value_as_a_number() -> None:
    (event,) = decode_batch(batch_with(event_json(value=42), index=0))

    assert event.value == 42.0


# --- refused bodies: the whole body ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"events":[', b"not json", b'{"events":[{"type":"event","name":"n",}]}'],
)
def test_it_refuses_malformed_json(body: bytes) -> None:
    assert "malformed JSON" in refusal(body)


def test_it_refuses_a_nan_literal_as_malformed_json() -> None:
    assert "malformed JSON" in refusal(batch_with(b'{"type":"event","name":"n","value":NaN}'))


@pytest.mark.parametrize("body", [b"[]", b'"events"', b"42", b"null", b"true"])
def test_it_refuses_a_body_that_is_not_an_object(body: bytes) -> None:
    assert "Expected `object`" in refusal(body)


def test_it_refuses_a_body_without_events() -> None:
    assert "events" in refusal(b"{}")


def test_it_refuses_events_that_is_not_an_array() -> None:
    message = refusal(b'{"events":{"type":"event","name":"n"}}')

    assert "array" in message
    assert "$.events" in message


def test_it_refuses_an_empty_events_array() -> None:
    message = refusal(b'{"events":[]}')

    assert "$.events" in message
    assert ">= 1" in message


def test_it_refuses_one_event_over_the_batch_limit() -> None:
    body = b'{"events":[' + b",".join([GOOD] * (MAX_EVENTS_PER_BATCH + 1)) + b"]}"

    message = refusal(body)

    assert "$.events" in message
    assert f"<= {MAX_EVENTS_PER_BATCH}" in message


def test_it_refuses_an_unknown_top_level_field() -> None:
    message = refusal(b'{"events":[' + GOOD + b'],"event":[]}')

    assert "unknown field `event`" in message


# --- refused bodies: one event, named by its index -----------------------------------------


def test_it_refuses_an_event_that_is_not_an_object() -> None:
    message = refusal(batch_with(b'"signup"'))

    assert AT_BAD_EVENT in message


@pytest.mark.parametrize("kind", ["warning", "Event", "", 1, None])
def test_it_refuses_a_bad_type(kind: object) -> None:
    message = refusal(batch_with(event_json(type=kind)))

    assert f"{AT_BAD_EVENT}.type" in message


def test_it_refuses_a_missing_type() -> None:
    message = refusal(batch_with(b'{"name":"n"}'))

    assert "type" in message
    assert AT_BAD_EVENT in message


def test_it_refuses_a_missing_name() -> None:
    message = refusal(batch_with(b'{"type":"event"}'))

    assert "name" in message
    assert AT_BAD_EVENT in message


def test_it_refuses_an_empty_name() -> None:
    assert f"{AT_BAD_EVENT}.name" in refusal(batch_with(event_json(name="")))


def test_it_refuses_a_null_name() -> None:
    assert f"{AT_BAD_EVENT}.name" in refusal(batch_with(event_json(name=None)))


def test_it_refuses_a_name_one_character_over_the_limit() -> None:
    message = refusal(batch_with(event_json(name="x" * (NAME_MAX_CHARS + 1))))

    assert f"{AT_BAD_EVENT}.name" in message
    assert str(NAME_MAX_CHARS) in message


def test_it_refuses_a_message_one_character_over_the_limit() -> None:
    message = refusal(batch_with(event_json(message="m" * (MESSAGE_MAX_CHARS + 1))))

    assert f"{AT_BAD_EVENT}.message" in message
    assert str(MESSAGE_MAX_CHARS) in message


@pytest.mark.parametrize("value", [b'"29"', b"true", b"false", b"[29]", b'{"v":29}'])
def test_it_refuses_a_value_that_is_not_a_number(value: bytes) -> None:
    body = batch_with(b'{"type":"event","name":"n","value":' + value + b"}")

    assert f"{AT_BAD_EVENT}.value" in refusal(body)


@pytest.mark.parametrize("value", [b"1e400", b"-1e400"])
def test_it_refuses_a_value_out_of_the_float_range(value: bytes) -> None:
    body = batch_with(b'{"type":"event","name":"n","value":' + value + b"}")

    message = refusal(body)

    assert f"{AT_BAD_EVENT}.value" in message
    assert "out of range" in message


@pytest.mark.parametrize("meta", [b"[]", b'[{"a":1}]', b'"plan=pro"', b"42", b"true"])
def test_it_refuses_meta_that_is_not_an_object(meta: bytes) -> None:
    message = refusal(batch_with(b'{"type":"event","name":"n","meta":' + meta + b"}"))

    assert f"{AT_BAD_EVENT}.meta" in message
    assert "object" in message


def test_it_refuses_meta_one_byte_over_the_limit() -> None:
    meta = meta_of_size(META_MAX_BYTES + 1)

    message = refusal(batch_with(b'{"type":"event","name":"n","meta":' + meta + b"}"))

    assert f"{AT_BAD_EVENT}.meta" in message
    assert str(META_MAX_BYTES) in message


def test_it_measures_meta_in_raw_bytes_not_characters() -> None:
    # Fewer characters than the limit, but over it once UTF-8 encoded.
    chars = META_MAX_BYTES // 2
    meta = ('{"k":"' + "é" * chars + '"}').encode()
    assert len(meta.decode()) < META_MAX_BYTES < len(meta)

    assert f"{AT_BAD_EVENT}.meta" in refusal(
        batch_with(b'{"type":"event","name":"n","meta":' + meta + b"}")
    )


def test_it_checks_meta_of_every_event_not_only_the_first() -> None:
    body = batch_with(b'{"type":"event","name":"n","meta":[]}', index=MAX_EVENTS_PER_BATCH - 1)

    assert f"$.events[{MAX_EVENTS_PER_BATCH - 1}].meta" in refusal(body)


@pytest.mark.parametrize("ts", ["2026-07-02T10:00:00", "2026-07-02T10:00:00.250"])
def test_it_refuses_a_ts_without_offset(ts: str) -> None:
    message = refusal(batch_with(event_json(ts=ts)))

    assert f"{AT_BAD_EVENT}.ts" in message
    assert "timezone" in message


@pytest.mark.parametrize(
    "ts", ["yesterday", "2026-07-02", "02/07/2026 10:00Z", "2026-13-02T10:00:00Z", 1782986400]
)
def test_it_refuses_a_ts_that_is_not_rfc3339(ts: object) -> None:
    assert f"{AT_BAD_EVENT}.ts" in refusal(batch_with(event_json(ts=ts)))


def test_it_refuses_an_unknown_event_field() -> None:
    message = refusal(batch_with(event_json(vaule=29)))

    assert "unknown field `vaule`" in message
    assert AT_BAD_EVENT in message


@pytest.mark.parametrize("bad", [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf"])
def test_it_refuses_invalid_utf8_inside_a_string(bad: bytes) -> None:
    body = batch_with(b'{"type":"event","name":"a' + bad + b'b"}')

    assert "malformed JSON" in refusal(body)


@pytest.mark.parametrize("bad", [b"\xff", b"\xc3"])
def test_it_refuses_invalid_utf8_inside_meta(bad: bytes) -> None:
    body = batch_with(b'{"type":"event","name":"n","meta":{"k":"a' + bad + b'b"}}')

    assert "UTF-8" in refusal(body)


def test_it_answers_deeply_nested_meta_under_the_byte_limit_without_crashing() -> None:
    depth = (META_MAX_BYTES - len(b'{"a":}')) // 2
    meta = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
    assert len(meta) <= META_MAX_BYTES

    try:
        decode_batch(batch_with(b'{"type":"event","name":"n","meta":' + meta + b"}"))
    except InvalidBatch:
        pass


# --- properties -----------------------------------------------------------------------------

UTC_OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

VALID_EVENTS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["event", "error"]),
        "name": st.text(min_size=1, max_size=NAME_MAX_CHARS),
    },
    optional={
        "message": st.none() | st.text(max_size=MESSAGE_MAX_CHARS),
        "value": st.none()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.integers(-(2**53), 2**53),
        "meta": st.none() | st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5),
        "ts": st.datetimes(
            min_value=TS_MIN.replace(tzinfo=None) + dt.timedelta(days=1),
            max_value=TS_MAX.replace(tzinfo=None) - dt.timedelta(days=1),
            timezones=UTC_OFFSETS,
        ),
    },
)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(VALID_EVENTS, min_size=1, max_size=MAX_EVENTS_PER_BATCH))
def test_it_decodes_any_valid_batch_to_the_same_events(events: list[dict[str, object]]) -> None:
    decoded = decode_batch(msgspec.json.encode({"events": events}))

    assert len(decoded) == len(events)
    assert [e.name for e in decoded] == [e["name"] for e in events]
    assert [e.type for e in decoded] == [e["type"] for e in events]
    assert [e.value for e in decoded] == [e.get("value") for e in events]
    assert [e.ts for e in decoded] == [e.get("ts") for e in events]


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=512))
def test_it_refuses_arbitrary_bytes_only_with_invalid_batch(body: bytes) -> None:
    try:
        result = decode_batch(body)
    except InvalidBatch:
        return
    assert isinstance(result, list)
    assert all(isinstance(event, Event) for event in result)


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["type", "name", "message", "value", "meta", "ts", "extra"]),
            JSON_VALUES | st.sampled_from(["event", "error"]),
        ),
        max_size=4,
    )
)
def test_it_refuses_arbitrary_json_events_only_with_invalid_batch(events: list[object]) -> None:
    try:
        result = decode_batch(msgspec.json.encode({"events": events}))
    except InvalidBatch:
        return
    assert len(result) == len(events)


@pytest.mark.parametrize(
    "ts", ["1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "0001-01-01T00:00:00Z"]
)
def test_it_refuses_a_ts_outside_the_storable_range(ts: str) -> None:
    body = b'{"events":[%s,{"type":"event","name":"a","ts":"%s"}]}' % (GOOD, ts.encode())
    with pytest.raises(InvalidBatch, match=r"\$\.events\[1\]\.ts"):
        decode_batch(body)
