"""The admission path's own steps for each lane (ingest_api.admission, ingest, bulk), driven
without a server: what each refusal answers, and that both lanes count the same kind of
refusal under the same reason."""

from __future__ import annotations

import gzip
import json

import pytest

from domain.token_bucket import Limit
from ingest_api import bulk, ingest
from ingest_api.admission import Refusal, too_slow
from ingest_api.bulk import Lines, decode_bulk, take_budget
from ingest_api.bulk_budget import BulkBudget
from ingest_api.ingest import take_tokens
from ingest_api.ratelimit import RateLimiter
from runtime.key_registry import ApiKey

NOW = 1_800_000_000.0
GOOD_LINE = b'{"type":"event","name":"a"}\n'


def key(rate_per_minute: int = 60, burst: int = 10) -> ApiKey:
    return ApiKey("key_1", "k", "hash", "ingest", NOW, Limit(rate_per_minute, burst), 0)


def refused(outcome: object) -> Refusal:
    assert isinstance(outcome, Refusal), outcome
    return outcome


def test_a_batch_decodes_to_its_events_and_a_bad_one_is_an_invalid_400() -> None:
    events = ingest.LANE.decode(b'{"events":[{"type":"event","name":"a"}]}', None)
    assert [event.name for event in events] == ["a"]  # type: ignore[union-attr]
    bad = refused(ingest.LANE.decode(b"{nope", None))
    assert (bad.status, bad.reason, bad.events) == (400, "invalid", 0)
    assert "error" in json.loads(bad.body)


def test_a_bulk_body_decodes_to_its_lines_gzipped_or_not() -> None:
    body = GOOD_LINE + b"{nope\n"
    for sent, encoding in ((body, None), (gzip.compress(body), " GZip ")):
        lines = decode_bulk(sent, encoding)
        assert isinstance(lines, Lines)
        assert [line.number for line in lines.valid] == [1]
        assert [number for number, _ in lines.rejected] == [2]


@pytest.mark.parametrize(
    ("body", "encoding", "status", "reason", "events"),
    [
        (b"{nope\n{nope either\n\n", None, 400, "invalid", 2),  # its bad lines are its events
        (GOOD_LINE, "gzip", 400, "invalid", 0),  # not gzip as declared
        (GOOD_LINE, "br", 415, "invalid", 0),
        (
            gzip.compress(b" " * (bulk.BULK_MAX_BYTES + 1), compresslevel=1),
            "gzip",
            413,
            "too_large",
            0,
        ),
    ],
)
def test_a_bulk_body_it_cannot_take_is_refused_and_counted_by_reason(
    body: bytes, encoding: str | None, status: int, reason: str, events: int
) -> None:
    answer = refused(decode_bulk(body, encoding))
    assert (answer.status, answer.reason, answer.events) == (status, reason, events)
    assert "error" in json.loads(answer.body)


def test_a_body_that_does_not_arrive_is_the_same_408_on_both_lanes() -> None:
    answer = too_slow(10)
    assert (answer.status, answer.reason, answer.events) == (408, "invalid", 0)
    assert answer.headers == {"Connection": "close"}
    assert json.loads(answer.body) == {"error": "the body did not arrive within 10s"}


def test_a_body_over_its_cap_is_a_too_large_413_on_both_lanes() -> None:
    for lane in (ingest.LANE, bulk.LANE):
        answer = lane.too_large("")
        assert (answer.status, answer.reason, answer.events) == (413, "too_large", 0)
    assert "over 52428800 bytes" in json.loads(bulk.LANE.too_large("").body)["error"]


def test_the_token_bucket_admits_then_refuses_with_retry_after_and_counts_the_events() -> None:
    limiter, api_key = RateLimiter(), key(burst=10)
    granted = take_tokens(limiter, api_key, 8, NOW)
    assert not isinstance(granted, Refusal)
    assert granted[1]["RateLimit-Remaining"] == "2"
    answer = refused(take_tokens(limiter, api_key, 5, NOW))
    assert (answer.status, answer.reason, answer.events) == (429, "rate_limited", 5)
    assert answer.headers["Retry-After"] == "3"  # 3 more tokens at one a second


def test_a_batch_over_the_burst_is_refused_without_retry_after() -> None:
    answer = refused(take_tokens(RateLimiter(), key(burst=10), 11, NOW))
    assert (answer.status, answer.reason, answer.events) == (429, "rate_limited", 11)
    assert "Retry-After" not in answer.headers


def test_the_bulk_budget_admits_then_refuses_and_a_request_over_it_never_passes() -> None:
    budget = BulkBudget(rate_per_hour=3600, burst=100, processes=1)
    assert take_budget(budget, "key_1", 100, NOW) is None
    spent = refused(take_budget(budget, "key_1", 10, NOW))
    assert (spent.status, spent.reason, spent.events) == (429, "rate_limited", 10)
    assert spent.headers["Retry-After"] == "10"
    never = refused(take_budget(budget, "key_1", 101, NOW))
    assert (never.status, never.reason, never.events) == (429, "rate_limited", 101)
    assert "Retry-After" not in never.headers and json.loads(never.body)["max_events"] == 100
