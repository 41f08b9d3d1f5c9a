"""Hostile input to the parsers outside the ingest body (tests/unit/test_wire.py has that one):
the check-in message in every form it may arrive in, the query parameters, and the admin
bodies of routes and canaries. Whatever comes in, the answer is a value or the parser's own
error (a 400), never another exception (a 500)."""

from __future__ import annotations

import datetime as dt
import json

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_api.admin_canaries import _create_canary
from ingest_api.admin_routing import _create_route, problems
from ingest_api.checkin import BadCheckin, checkin_message
from queries.params import QueryError, parse_duration, parse_limit, parse_time
from schemas.canaries import CHECKIN_MESSAGE_MAX_CHARS
from schemas.routing import RouteDefined

NOW = dt.datetime(2026, 7, 2, 12, tzinfo=dt.UTC)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
CONTENT_TYPES = st.sampled_from(
    ["", "application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded",
     "text/plain", "multipart/form-data; boundary=x", "APPLICATION/JSON"]
)  # fmt: skip


@settings(max_examples=150)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST"]),
    query=st.dictionaries(
        st.text(max_size=10), st.lists(st.text(max_size=600), min_size=1, max_size=2), max_size=3
    ),
    content_type=CONTENT_TYPES,
    body=st.binary(max_size=800) | JSON.map(lambda v: json.dumps(v).encode()),
)
def test_a_checkin_message_is_a_short_string_none_or_bad_checkin(
    method: str, query: dict[str, list[str]], content_type: str, body: bytes
) -> None:
    try:
        message = checkin_message(method, query, content_type, body)
    except BadCheckin:
        return
    assert message is None or (
        isinstance(message, str) and 0 < len(message) <= CHECKIN_MESSAGE_MAX_CHARS
    )


@given(st.text(max_size=600))
def test_a_json_checkin_carries_its_message_or_is_refused(text: str) -> None:
    body = json.dumps({"message": text, "extra": [1, {"deep": True}]}).encode()
    try:
        assert checkin_message("POST", {}, "application/json", body) == (text or None)
    except BadCheckin as exc:
        assert len(text) > CHECKIN_MESSAGE_MAX_CHARS and "500" in str(exc)


@settings(max_examples=150)
@given(
    st.text(max_size=60)
    | st.sampled_from(
        ["-1e400d", "1e400", "-99999999999d", "9" * 40, "nan", "inf", "-0s", "²", "١٢", "5²m"]
    )
)
def test_query_times_durations_and_limits_parse_or_say_why(raw: str) -> None:
    for parse in (
        lambda: parse_time(raw, NOW, "from"),
        lambda: parse_duration(raw, "interval"),
        lambda: parse_limit({"limit": raw}, 100, 1000),
    ):
        try:
            parse()
        except QueryError:
            pass


@settings(max_examples=150)
@given(JSON)
def test_admin_bodies_decode_or_are_refused_with_the_decoder_error(value: object) -> None:
    body = json.dumps(value).encode()
    for decoder in (_create_route, _create_canary):
        try:
            decoder.decode(body)
        except msgspec.MsgspecError:
            pass


@given(
    st.sampled_from(["immediate", "digest", "silent"]),
    st.lists(st.text(min_size=1, max_size=5), max_size=2),
    st.one_of(st.none(), st.text(max_size=40)),
)
def test_a_route_with_any_timezone_is_judged_without_raising(
    mode: str, channels: list[str], zone: str | None
) -> None:
    from schemas.routing import DigestSchedule

    digest = None if zone is None else DigestSchedule(timezone=zone)
    route = RouteDefined("r", "any", "*", channels, mode, 1.0, 1.0, digest=digest)  # type: ignore[arg-type]
    assert problems(route) is None or isinstance(problems(route), str)


def test_unicode_digits_are_not_numbers_anywhere() -> None:
    """`"²".isdigit()` is True and `int("²")` raises: every number read from text is ASCII."""
    import asyncio

    import pytest

    from domain.notification_texts import retry_delay_s
    from ingest_api.body import read_capped

    with pytest.raises(QueryError):
        parse_limit({"limit": "²"}, 100, 1000)
    assert retry_delay_s(1, "²") == retry_delay_s(1)

    async def one_chunk():  # type: ignore[no-untyped-def]
        yield b"{}"

    assert asyncio.run(read_capped("²", one_chunk(), 10)) == b"{}"


# --- the body's deadline (ingest_api.body) -----------------------------------------------


def test_a_stalled_body_is_too_slow_and_a_prompt_one_is_not_cut_later() -> None:
    import asyncio
    import time

    import pytest

    from ingest_api.body import SWEEP_S, BodyTooSlow, read_capped

    async def stalled():  # type: ignore[no-untyped-def]
        yield b'{"events":['
        await asyncio.sleep(60)
        yield b"]}"

    async def prompt():  # type: ignore[no-untyped-def]
        yield b"{}"

    async def scenario() -> float:
        started = time.monotonic()
        with pytest.raises(BodyTooSlow):
            await read_capped(None, stalled(), 1000, timeout_s=0.3)
        waited = time.monotonic() - started
        # The same task goes on: neither that deadline nor a later one cancels anything else.
        assert await read_capped(None, prompt(), 1000, timeout_s=0.1) == b"{}"
        await asyncio.sleep(0.1 + 2 * SWEEP_S)
        return waited

    waited = asyncio.run(scenario())
    assert 0.3 <= waited <= 0.3 + 2 * SWEEP_S


def test_a_cancelled_body_read_stays_cancelled() -> None:
    import asyncio

    import pytest

    from ingest_api.body import read_capped

    async def stalled():  # type: ignore[no-untyped-def]
        await asyncio.sleep(60)
        yield b""

    async def scenario() -> None:
        reading = asyncio.create_task(read_capped(None, stalled(), 1000, timeout_s=30))
        await asyncio.sleep(0.05)
        reading.cancel()  # the client went away, the server stops: not a 408
        with pytest.raises(asyncio.CancelledError):
            await reading

    asyncio.run(scenario())
