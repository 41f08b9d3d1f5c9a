"""queries.events cursors: the last (ts, event_id) of a page, opaque to clients, and `meta`
returned parsed."""

from __future__ import annotations

import base64
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queries.events import decode_cursor, encode_cursor, parse_meta
from queries.params import QueryError

EVENT_ID = uuid.UUID("0190f5a2-7b1c-7d3e-8f00-000000000007")


def test_it_reads_back_the_position_it_wrote() -> None:
    cursor = encode_cursor(1_782_993_600_123, EVENT_ID)

    assert decode_cursor(cursor) == (1_782_993_600_123, EVENT_ID)


def test_it_writes_a_url_safe_cursor_without_padding() -> None:
    cursor = encode_cursor(1_782_993_600_123, EVENT_ID)

    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@given(ts_ms=st.integers(0, 4_102_444_800_000), event_id=st.uuids())
def test_it_round_trips_any_position(ts_ms: int, event_id: uuid.UUID) -> None:
    assert decode_cursor(encode_cursor(ts_ms, event_id)) == (ts_ms, event_id)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%",
        _b64("123"),
        _b64(f"-5:{EVENT_ID}"),
        _b64(f"12x:{EVENT_ID}"),
        _b64("123:not-a-uuid"),
        _b64(f"123:{EVENT_ID}:extra"),
        _b64(f"{'9' * 16}:{EVENT_ID}"),
        base64.urlsafe_b64encode(b"\xff\xfe:1").decode(),
    ],
)
def test_it_refuses_a_cursor_it_did_not_write(cursor: str) -> None:
    with pytest.raises(QueryError, match="`cursor`"):
        decode_cursor(cursor)


def test_it_parses_meta_and_reads_none_as_null() -> None:
    assert parse_meta('{"plan": "pro", "seats": 3}') == {"plan": "pro", "seats": 3}
    assert parse_meta("") is None


def test_it_returns_unparseable_meta_as_stored() -> None:
    assert parse_meta("{oops") == "{oops"
