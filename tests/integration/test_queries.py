"""The named queries on a real chDB: rows inserted straight into `events` and `rollups`, each
query called with a fixed `now`, exact answers asserted.

chDB opens one data directory per process, and the stack's store owns its own in a separate
process, so this module opens a directory of its own here and closes it at the end.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from queries import QueryError, run_query
from queries.grains import GRAINS
from tests.conftest import fresh_clickhouse

UTC = dt.UTC
NOW = dt.datetime(2026, 7, 10, 12, 0, tzinfo=UTC)
EVENT_COLUMNS = [
    "event_id",
    "key_id",
    "type",
    "name",
    "message",
    "value",
    "meta",
    "ts",
    "received_at",
]
ROLLUP_COLUMNS = [
    "grain", "name", "type", "key_id", "bucket",
    "count", "value_count", "value_sum", "value_min", "value_max",
]  # fmt: skip
# The random events behind the rollups-versus-raw comparisons lie in the 20 days before NOW;
# every hand-made case lies in January, where nothing else is.
RANDOM_NAMES = [f"n{i}" for i in range(12)]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def event(
    name: str,
    ts: dt.datetime,
    *,
    kind: str = "event",
    value: float | None = None,
    message: str = "",
    meta: str = "",
    key_id: str = "key_a",
) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "key_id": key_id,
        "type": kind,
        "name": name,
        "message": message,
        "value": value,
        "meta": meta,
        "ts": ts,
        "received_at": ts,
    }


def rollup_deltas(events: list[dict[str, Any]]) -> list[list[Any]]:
    """What the rollups agent writes for these events: one row per (grain, name, type, key,
    bucket), folded here in plain Python."""
    folded: dict[tuple, list[Any]] = defaultdict(lambda: [0, 0, 0.0, None, None])
    for row in events:
        epoch = int(row["ts"].timestamp())
        for grain, seconds in GRAINS:
            bucket = dt.datetime.fromtimestamp(epoch - epoch % seconds, UTC)
            fold = folded[(grain, row["name"], row["type"], row["key_id"], bucket)]
            fold[0] += 1
            if row["value"] is not None:
                fold[1] += 1
                fold[2] += row["value"]
                fold[3] = row["value"] if fold[3] is None else min(fold[3], row["value"])
                fold[4] = row["value"] if fold[4] is None else max(fold[4], row["value"])
    return [[*key, *fold] for key, fold in folded.items()]


def store(client: Client, events: list[dict[str, Any]]) -> None:
    """Insert events and their rollups, the rollups as two deltas per bucket (as the agent's
    flushes leave them before ClickHouse merges), so every query must aggregate again."""
    client.insert(
        "events", [[row[c] for c in EVENT_COLUMNS] for row in events], column_names=EVENT_COLUMNS
    )
    for half in (events[::2], events[1::2]):
        client.insert("rollups", rollup_deltas(half), column_names=ROLLUP_COLUMNS)


def random_events(rng: random.Random) -> list[dict[str, Any]]:
    start = NOW - dt.timedelta(days=20)
    rows = []
    for _ in range(4000):
        name = RANDOM_NAMES[min(int(rng.expovariate(0.35)), len(RANDOM_NAMES) - 1)]
        ts = start + dt.timedelta(milliseconds=rng.randrange(20 * 86_400_000))
        # Quarter steps keep every sum exact in floating point, whatever the order of addition.
        value = rng.randrange(-400, 400) / 4 if rng.random() < 0.7 else None
        kind = "error" if rng.random() < 0.1 else "event"
        rows.append(event(name, ts, kind=kind, value=value, key_id=rng.choice(["key_a", "key_b"])))
    rows += [
        event("n0", rows[0]["ts"], value=1.0) for _ in range(3)
    ]  # one millisecond, four events
    return rows


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    chdb = fresh_clickhouse(tmp_path_factory.mktemp("queries-chdb"))
    store(chdb, random_events(random.Random(20260710)))
    store(chdb, HAND_MADE)
    try:
        yield chdb
    finally:
        chdb.close()


def query(client: Client, query_name: str, /, **params: str) -> dict[str, Any]:
    return run_query(client, query_name, params, NOW)


# --- hand-made cases (January 2026) ---------------------------------------------------------

SERIES_EVENTS = [
    event("hand-series", at("2026-01-05T10:05:00Z"), value=10),
    event("hand-series", at("2026-01-05T10:55:00Z"), value=5),
    event("hand-series", at("2026-01-05T11:00:00Z")),
    event("hand-series", at("2026-01-05T13:30:00Z"), value=1),
    event("hand-series", at("2026-01-05T13:59:59.999Z"), value=4, kind="error"),
    event("hand-series", at("2026-01-05T14:00:00Z"), value=100),  # `to` is exclusive
]

TOP_FROM = at("2026-01-10T07:13:20.250Z")  # unaligned on purpose: exact all the same
TOP_TO = TOP_FROM + dt.timedelta(days=2)
TOP_PREVIOUS = TOP_FROM - dt.timedelta(days=2)
MS = dt.timedelta(milliseconds=1)
TOP_EVENTS = (
    [event("top-a", TOP_FROM), event("top-a", TOP_TO - MS)]
    + [event("top-a", TOP_FROM + dt.timedelta(hours=h)) for h in (1, 20, 30)]
    + [event("top-a", TOP_FROM - MS), event("top-a", TOP_PREVIOUS)]
    + [event("top-b", TOP_FROM + dt.timedelta(hours=h), kind="error") for h in (2, 3, 4)]
    + [event("top-b", TOP_PREVIOUS + dt.timedelta(hours=h), kind="error") for h in (2, 3, 4)]
    + [event("top-c", TOP_FROM + dt.timedelta(minutes=m)) for m in (1, 2)]
    + [event("top-d", TOP_PREVIOUS + dt.timedelta(hours=h)) for h in (1, 2, 3, 4)]
    + [event("top-e", TOP_TO), event("top-e", TOP_PREVIOUS - MS)]  # just outside both periods
)

ERRORS_FROM, ERRORS_TO = at("2026-01-20T00:00:00Z"), at("2026-01-21T00:00:00Z")
ERROR_EVENTS = [
    event("err-old", at("2026-01-15T08:00:00.125Z"), kind="error", message="first"),
    event("err-old", at("2026-01-20T01:00:00Z"), kind="error", message="m1"),
    event("err-old", at("2026-01-20T05:00:00Z"), kind="error", message="m2"),
    event("err-old", at("2026-01-22T00:00:00Z"), kind="error", message="later"),
    event("err-new", at("2026-01-20T02:00:00Z"), kind="error", message="a"),
    event("err-new", at("2026-01-20T03:00:00Z"), kind="error", message="b"),
    event("err-new", at("2026-01-20T04:00:00Z"), kind="error", message="c\nsecond line"),
    event("err-new", at("2026-01-20T06:00:00Z"), message="an event, not an error"),
    event("err-later", at("2026-01-21T00:00:00Z"), kind="error", message="after"),
]

PERCENTILE_EVENTS = [
    event("pct", at("2026-01-25T00:00:00Z") + dt.timedelta(minutes=i), value=float(v))
    for i, v in enumerate(random.Random(3).sample(range(1, 101), 100))
] + [event("pct", at("2026-01-25T03:00:00Z")) for _ in range(10)]

PAGE_START = at("2026-01-28T00:00:00Z")
PAGE_EVENTS = [
    event(
        "page",
        PAGE_START + dt.timedelta(minutes=i // 2 if i < 10 else i),  # pairs share a millisecond
        kind="error" if i % 3 == 0 else "event",
        value=float(i),
        meta=f'{{"i": {i}}}' if i % 2 else "",
        message=f"event {i}",
    )
    for i in range(23)
]

HAND_MADE = SERIES_EVENTS + TOP_EVENTS + ERROR_EVENTS + PERCENTILE_EVENTS + PAGE_EVENTS


# --- series ---------------------------------------------------------------------------------


def test_it_sums_a_series_per_bucket_from_the_rollups_with_gaps_filled(client: Client) -> None:
    result = query(
        client, "series", name="hand-series", interval="1h",
        **{"from": "2026-01-05T10:00:00Z", "to": "2026-01-05T14:00:00Z"},
    )  # fmt: skip

    assert (result["source"], result["grain"]) == ("rollups", "hour")
    assert [
        (
            p["t"],
            p["count"],
            p["value_count"],
            p["value_sum"],
            p["value_avg"],
            p["value_min"],
            p["value_max"],
        )
        for p in result["points"]
    ] == [
        ("2026-01-05T10:00:00Z", 2, 2, 15.0, 7.5, 5.0, 10.0),
        ("2026-01-05T11:00:00Z", 1, 0, 0.0, None, None, None),
        ("2026-01-05T12:00:00Z", 0, 0, 0.0, None, None, None),
        ("2026-01-05T13:00:00Z", 2, 2, 5.0, 2.5, 1.0, 4.0),
    ]


def test_it_answers_a_series_from_raw_events_alike(client: Client) -> None:
    params = {"name": "hand-series", "from": "2026-01-05T10:00:00Z", "to": "2026-01-05T14:00:00Z"}
    rollups = query(client, "series", interval="1h", **params)
    raw = query(client, "series", interval="1h", source="events", **params)

    assert (raw["source"], raw["grain"]) == ("events", None)
    assert raw["points"] == rollups["points"]


def test_it_cuts_a_series_at_unaligned_ends_to_the_millisecond(client: Client) -> None:
    params = {"from": "2026-01-05T10:05:00.001Z", "to": "2026-01-05T13:59:59.999Z"}
    for source in ("rollups", "events"):
        result = query(client, "series", name="hand-series", interval="1h", source=source, **params)

        assert [(p["count"], p["value_sum"]) for p in result["points"]] == [
            (1, 5.0),  # 10:05:00.000 is before `from`
            (1, 0.0),
            (0, 0.0),
            (1, 1.0),  # 13:59:59.999 is `to` itself
        ], source


def test_it_reads_raw_events_for_an_interval_no_grain_divides(client: Client) -> None:
    result = query(
        client, "series", name="hand-series", interval="90s",
        **{"from": "2026-01-05T10:03:00Z", "to": "2026-01-05T10:07:30Z"},
    )  # fmt: skip

    assert result["source"] == "events"
    assert [(p["t"], p["count"]) for p in result["points"]] == [
        ("2026-01-05T10:03:00Z", 0),
        ("2026-01-05T10:04:30Z", 1),
        ("2026-01-05T10:06:00Z", 0),
    ]


def test_it_gives_the_same_series_from_rollups_and_raw_events_for_any_range(client: Client) -> None:
    rng = random.Random(11)
    for _ in range(60):
        step = rng.choice([60, 300, 900, 3600, 7200, 6 * 3600, 86_400, 7 * 86_400])
        length = dt.timedelta(milliseconds=rng.randrange(1, min(step * 9_000, 25 * 86_400) * 1000))
        start = (
            NOW - dt.timedelta(days=22) + dt.timedelta(milliseconds=rng.randrange(22 * 86_400_000))
        )
        params = {
            "name": rng.choice(RANDOM_NAMES[:4]),
            "interval": str(step),
            "from": start.isoformat(),
            "to": (start + length).isoformat(),
        }
        rollups = query(client, "series", **params)
        raw = query(client, "series", source="events", **params)

        assert rollups["source"] == "rollups"
        assert rollups["points"] == raw["points"], params


def test_it_counts_the_random_events_in_full(client: Client) -> None:
    result = query(client, "series", name="n0", interval="1d", **{"from": "-30d", "to": "now"})

    assert result["source"] == "rollups"
    stored = client.query(
        "SELECT count() FROM events WHERE name = 'n0' AND ts >= '2026-06-01'"
    ).result_rows[0][0]
    assert sum(p["count"] for p in result["points"]) == stored > 0


# --- top_names ------------------------------------------------------------------------------


def _top(client: Client, **params: str) -> dict[str, Any]:
    return query(
        client, "top_names", **{"from": TOP_FROM.isoformat(), "to": TOP_TO.isoformat()}, **params
    )


def test_it_ranks_names_with_the_change_against_the_previous_period(client: Client) -> None:
    result = _top(client)

    assert result["previous_from"] == "2026-01-08T07:13:20.250000Z"
    assert result["names"] == [
        {"name": "top-a", "count": 5, "previous": 2, "change": 3, "change_pct": 150.0},
        {"name": "top-b", "count": 3, "previous": 3, "change": 0, "change_pct": 0.0},
        {"name": "top-c", "count": 2, "previous": 0, "change": 2, "change_pct": None},
    ]


def test_it_filters_top_names_by_type_and_limits_them(client: Client) -> None:
    assert [row["name"] for row in _top(client, type="error")["names"]] == ["top-b"]
    assert [row["name"] for row in _top(client, type="event")["names"]] == ["top-a", "top-c"]
    assert [row["name"] for row in _top(client, limit="2")["names"]] == ["top-a", "top-b"]


def test_it_gives_the_same_top_names_from_raw_events(client: Client) -> None:
    for params in ({}, {"type": "error"}, {"limit": "1"}):
        assert _top(client, source="events", **params)["names"] == _top(client, **params)["names"]


def test_it_gives_the_same_top_names_from_rollups_and_raw_events_for_any_range(
    client: Client,
) -> None:
    rng = random.Random(12)
    for i in range(40):
        unit = 3_600_000 if i % 2 else 1  # whole hours half of the time: then hour rows serve
        start = NOW - dt.timedelta(milliseconds=rng.randrange(15 * 86_400_000 // unit) * unit)
        length = dt.timedelta(milliseconds=rng.randrange(1, 8 * 86_400_000 // unit) * unit)
        params = {
            "from": start.isoformat(),
            "to": (start + length).isoformat(),
            "type": rng.choice(["", "event", "error"]),
            "limit": "1000",
        }
        rollups = query(client, "top_names", **params)
        raw = query(client, "top_names", source="events", **params)

        assert rollups["names"] == raw["names"], params
    assert rollups["source"] == "rollups"


# --- errors ---------------------------------------------------------------------------------


def test_it_lists_errors_with_first_and_last_sighting_marking_new_ones(client: Client) -> None:
    result = query(
        client, "errors", **{"from": ERRORS_FROM.isoformat(), "to": ERRORS_TO.isoformat()}
    )

    assert result["errors"] == [
        {
            "name": "err-new",
            "count": 3,
            "first_seen": "2026-01-20T02:00:00.000Z",
            "last_seen": "2026-01-20T04:00:00.000Z",
            "last_message": "c\nsecond line",
            "new": True,
        },
        {
            "name": "err-old",
            "count": 2,
            "first_seen": "2026-01-15T08:00:00.125Z",
            "last_seen": "2026-01-20T05:00:00.000Z",
            "last_message": "m2",
            "new": False,
        },
    ]


def test_it_marks_an_error_new_in_the_period_of_its_first_sighting(client: Client) -> None:
    result = query(
        client,
        "errors",
        limit="1",
        **{"from": "2026-01-15T00:00:00Z", "to": "2026-01-16T00:00:00Z"},
    )

    assert [(e["name"], e["count"], e["new"], e["last_message"]) for e in result["errors"]] == [
        ("err-old", 1, True, "first")
    ]


# --- percentiles ----------------------------------------------------------------------------


def test_it_gives_exact_interpolated_percentiles_of_the_values(client: Client) -> None:
    params = {"from": "2026-01-25T00:00:00Z", "to": "2026-01-26T00:00:00Z"}
    result = query(client, "percentiles", name="pct", **params)

    assert result["count"] == 100  # the ten events without a value do not count
    assert [p["q"] for p in result["percentiles"]] == [0.5, 0.95, 0.99]
    assert [p["value"] for p in result["percentiles"]] == pytest.approx([50.5, 95.05, 99.01])
    ends = query(client, "percentiles", name="pct", q="0,1,0.25", **params)["percentiles"]
    assert [p["value"] for p in ends] == pytest.approx([1.0, 100.0, 25.75])


def test_it_gives_no_percentiles_without_values(client: Client) -> None:
    result = query(client, "percentiles", name="nothing-here", **{"from": "2026-01-25T00:00:00Z"})

    assert result["count"] == 0
    assert [p["value"] for p in result["percentiles"]] == [None, None, None]


# --- events ---------------------------------------------------------------------------------


PAGE_RANGE = {"from": "2026-01-27T00:00:00Z", "to": "2026-01-29T00:00:00Z"}


def _pages(client: Client, limit: str, **params: str) -> list[dict[str, Any]]:
    pages, cursor = [], ""
    while True:
        page = query(
            client, "events", name="page", limit=limit, cursor=cursor, **PAGE_RANGE, **params
        )
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(page["events"]) == int(limit)


def test_it_pages_through_events_newest_first_without_repeats_or_gaps(client: Client) -> None:
    pages = _pages(client, "4")
    paged = [e for page in pages for e in page["events"]]
    (whole,) = _pages(client, "1000")

    assert len(pages) == 6 and len(pages[-1]["events"]) == 3
    assert paged == whole["events"]
    assert len({e["event_id"] for e in paged}) == len(PAGE_EVENTS)
    assert [e["ts"] for e in paged] == sorted((e["ts"] for e in paged), reverse=True)
    assert paged[0]["ts"] == "2026-01-28T00:22:00.000Z"


def test_it_returns_each_event_in_full_with_meta_parsed(client: Client) -> None:
    newest = _pages(client, "1000")[0]["events"][0]
    original = PAGE_EVENTS[22]

    assert newest == {
        "event_id": str(original["event_id"]),
        "ts": "2026-01-28T00:22:00.000Z",
        "type": "event",
        "name": "page",
        "message": "event 22",
        "value": 22.0,
        "meta": None,
        "key_id": "key_a",
    }
    assert _pages(client, "1000")[0]["events"][1]["meta"] == {"i": 21}


def test_it_filters_events_by_type(client: Client) -> None:
    errors = [e for page in _pages(client, "3", type="error") for e in page["events"]]

    assert [e["message"] for e in errors] == [f"event {i}" for i in (21, 18, 15, 12, 9, 6, 3, 0)]


# --- parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("series", {"name": "x", "source": "rollups", "interval": "30s"}, "multiple of 60"),
        ("series", {"name": "x", "source": "cache"}, "`source`"),
        ("top_names", {"type": "warning"}, "`type`"),
        ("top_names", {"limit": "1001"}, "`limit`"),
        ("top_names", {"source": "cache"}, "`source`"),
        ("errors", {"limit": "0"}, "`limit`"),
        ("errors", {"from": "yesterday"}, "`from`"),
        ("percentiles", {"q": "0.5"}, "`name`"),
        ("percentiles", {"name": "x", "q": "95"}, "`q`"),
        ("events", {"name": "x", "cursor": "bogus"}, "`cursor`"),
        ("events", {"name": "x", "limit": "5000"}, "`limit`"),
        ("events", {}, "`name`"),
    ],
)
def test_it_refuses_bad_parameters_with_a_message(
    client: Client, name: str, params: dict[str, str], message: str
) -> None:
    with pytest.raises(QueryError, match=message):
        query(client, name, **params)


def test_it_clips_a_range_before_1970_instead_of_failing(client: Client) -> None:
    result = query(
        client, "top_names", **{"from": "1969-12-01T00:00:00Z", "to": "1970-01-02T00:00:00Z"}
    )

    assert result["names"] == []
    assert result["previous_from"] == "1970-01-01T00:00:00Z"
