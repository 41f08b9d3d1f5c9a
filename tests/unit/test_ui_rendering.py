"""The web UI's pure parts: SVG charts, sessions and CSRF tokens, the pages' helpers, and the
templates rendered with hostile user text (no server, no I/O)."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import pytest

from ingest_api.ui import render, svg
from ingest_api.ui.session import (
    csrf_ok,
    csrf_token,
    new_session,
    read_session,
    sign_session,
    ui_secret,
)
from ingest_api.ui.views import (
    chart_interval,
    events_form,
    paged,
    run_durations,
    sorted_by_status,
    status_counts,
    whole_buckets,
    whole_hours,
)

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "\u202eevil.exe\u202c and \u2067isolated\u2069 \u200f",
    "x" * 10_000,
    "</title></svg><script>alert(2)</script>",
    "{{ 7*7 }} {% raw %}",
]


class _Tags(HTMLParser):
    """Every tag and attribute of a document, as a browser's tokenizer sees them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def injected(html: str) -> list[str]:
    """What hostile text could have added: a script without our src, an img, an event
    handler attribute, a javascript: URL."""
    found = []
    for tag, attrs in _Tags(html).tags:
        if tag in ("img", "iframe", "object", "embed") or (
            tag == "script" and dict(attrs).get("src") != "/ui-assets/ui.js"
        ):
            found.append(tag)
        found += [
            f"{tag}[{name}]"
            for name, value in attrs
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:")
        ]
    return found


SECRET = ui_secret("an-admin-token-of-some-length")


# --- SVG --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"), [(0, 1), (-3, 1), (7, 10), (10, 10), (11, 20), (0.3, 0.5), (4500, 5000)]
)
def test_it_rounds_an_axis_up_to_1_2_or_5(value: float, expected: float) -> None:
    assert svg.nice_max(value) == pytest.approx(expected)


def test_it_draws_one_path_per_series_and_lifts_the_pen_over_gaps() -> None:
    chart = svg.line_chart(
        [
            svg.Series("a", [(0, 1), (60, None), (120, 3)]),
            svg.Series("b", [(0, 2), (60, 2), (120, 2)]),
        ],
        "t",
    )
    paths = re.findall(r'<path class="series s(\d)" d="([^"]*)"', chart)
    assert [index for index, _ in paths] == ["0", "1"]
    assert paths[0][1].count("M") == 2  # a gap: two strokes
    assert paths[1][1].count("M") == 1
    assert "no data" not in chart


def test_it_says_no_data_for_an_empty_chart() -> None:
    assert "no data" in svg.line_chart([svg.Series("a", [(0, None), (60, None)])], "t")
    assert "no data" in svg.line_chart([], "t")


@pytest.mark.parametrize("hostile", HOSTILE)
def test_it_escapes_chart_titles_labels_and_strip_titles(hostile: str) -> None:
    chart = svg.line_chart([svg.Series(hostile, [(0, 1), (60, 2)])], hostile)
    strip = svg.strip(["success", "fail"], [hostile, hostile])
    for markup in (chart, strip):
        assert injected(str(markup)) == []
        assert "\u202e" not in markup and "\u2067" not in markup
    assert "&lt;" in chart or "<" not in hostile


def test_it_formats_numbers_shortly() -> None:
    assert [svg.format_number(v) for v in (0, 950, 1200, 3_400_000, 0.25, 2.824464)] == [
        "0",
        "950",
        "1.2k",
        "3.4M",
        "0.25",
        "2.82",
    ]


# --- sessions and CSRF ---------------------------------------------------------------------------
def test_it_reads_back_a_session_it_signed() -> None:
    session = new_session("read", "key_1", now=1000.0)
    assert read_session(SECRET, sign_session(SECRET, session), now=1001.0) == session


def test_it_refuses_expired_forged_and_malformed_cookies() -> None:
    session = new_session("admin", "", now=1000.0, ttl_s=60)
    cookie = sign_session(SECRET, session)
    assert read_session(SECRET, cookie, now=1061.0) is None  # expired
    assert read_session(ui_secret("another-admin-token-000"), cookie, now=1001.0) is None
    body, _, signature = cookie.partition(".")
    forged = sign_session(SECRET, new_session("admin", "", now=1000.0, ttl_s=10**9)).partition(".")[
        0
    ]
    assert read_session(SECRET, f"{forged}.{signature}", now=1001.0) is None
    for junk in ("", ".", "abc", "a.b.c", "x" * 5000, f"{body}.", f".{signature}", "%%%.%%%"):
        assert read_session(SECRET, junk, now=1001.0) is None


def test_a_csrf_token_belongs_to_one_session() -> None:
    one, other = new_session("admin", "", time.time()), new_session("admin", "", time.time())
    token = csrf_token(SECRET, one.nonce)
    assert csrf_ok(SECRET, one.nonce, token)
    assert not csrf_ok(SECRET, other.nonce, token)
    assert not csrf_ok(SECRET, one.nonce, "")
    assert not csrf_ok(SECRET, None, token)


# --- page helpers ---------------------------------------------------------------------------------
def test_it_lists_down_canaries_first() -> None:
    views = [
        {"name": n, "status": s}
        for n, s in [("a", "up"), ("b", "down"), ("c", "paused"), ("d", "late"), ("e", "new")]
    ]
    assert [v["status"] for v in sorted_by_status(views)] == ["down", "late", "new", "up", "paused"]
    assert status_counts(views) == {"down": 1, "late": 1, "new": 1, "up": 1, "paused": 1}


def test_it_picks_chart_intervals_the_rollups_serve() -> None:
    assert chart_interval(3600, "auto") == 60
    assert chart_interval(30 * 86400, "auto") == 86400  # 720 hours is over 400 points
    assert chart_interval(30 * 86400, "1m") != 60  # 43,200 points: refused, a coarser one is used
    assert all(
        chart_interval(r, i) % 60 == 0
        for r in (3600, 86400, 30 * 86400)
        for i in ("auto", "1m", "1d")
    )


def test_it_replaces_unknown_pickers_with_defaults() -> None:
    form = events_form(
        {"names": ",".join(HOSTILE), "range": "<x>", "interval": "2s", "stat": "drop table"}
    )
    assert form["range"] == "24h" and form["interval"] == "auto" and form["stat"] == "count"
    assert len(form["names"]) == 6


def test_it_pages_the_canaries_and_clamps_the_page_number() -> None:
    items = [{"n": i} for i in range(250)]
    assert [len(paged(items, p)[1]) for p in ("1", "2", "3")] == [100, 100, 50]
    assert paged(items, "99")[0] == 3 and paged(items, "-1")[0] == 1 and paged(items, "<x>")[0] == 1
    assert paged([], "2") == (1, [])


def test_top_names_cover_whole_hours_up_to_the_next_one() -> None:
    assert whole_hours(86400, 7 * 3600 + 5) == {"from": str(8 * 3600 - 86400), "to": str(8 * 3600)}
    assert whole_hours(3600, 7200) == {"from": "7200", "to": "10800"}


def test_a_chart_covers_whole_buckets_up_to_the_next_one() -> None:
    assert whole_buckets(86400, 300, 7 * 3600 + 301) == {
        "from": str(7 * 3600 + 600 - 86400),
        "to": str(7 * 3600 + 600),
    }


def test_it_measures_runs_from_start_to_the_next_outcome() -> None:
    checkins = [
        {"kind": "start", "at": "2026-01-01T00:00:00.000Z"},
        {"kind": "success", "at": "2026-01-01T00:01:30.000Z"},
        {"kind": "success", "at": "2026-01-01T00:02:00.000Z"},
        {"kind": "start", "at": "2026-01-01T00:03:00.000Z"},
        {"kind": "fail", "at": "2026-01-01T00:03:05.000Z"},
    ]
    assert [(r["seconds"], r["outcome"]) for r in run_durations(checkins)] == [
        (90, "success"),
        (5, "fail"),
    ]


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (90, "1m30s"), (3600, "1h"), (90000, "1d1h"), (None, "—")]
)
def test_it_writes_durations_shortly(seconds: float | None, text: str) -> None:
    assert render.duration(seconds) == text


# --- templates with hostile text ----------------------------------------------------------------
class _Viewer:
    admin = True
    csrf = "csrf-token"


def _canary(name: str) -> dict[str, object]:
    return {
        "id": "can_1",
        "name": name,
        "status": "down",
        "last_checkin_at": "2026-01-01T00:00:00.000Z",
        "last_message": name,
        "next_due_at": None,
        "interval_seconds": 60,
        "grace_seconds": 0,
        "max_runtime_seconds": None,
        "events": {"name": name, "min_count": 1},
        "channels": ["chn_x"],
        "paused": False,
    }


def _assert_inert(html: str) -> None:
    assert injected(html) == []
    assert "\u202e" not in html and "\u2067" not in html and "\u200f" not in html
    assert "49" not in html.split("<main>")[1].split("7*7")[0][-5:]  # no template evaluated
    assert len(re.findall(r"<script\b", html)) == 1  # the one ui.js tag, nothing else


@pytest.mark.parametrize("hostile", HOSTILE)
def test_the_pages_escape_user_text(hostile: str) -> None:
    env = render.environment()
    common = {
        "viewer": _Viewer(),
        "nav": "",
        "done": "",
        "now": time.time(),
        **render.PAGE_DEFAULTS,
    }
    common["viewer"] = _Viewer()
    pages = {
        "canaries.html": {
            "canaries": [_canary(hostile)],
            "counts": {"down": 1},
            "strips": {"can_1": svg.strip(["fail"], [hostile])},
            "page": 2,
            "pages": 3,
            "total": 201,
            "first": 100,
        },
        "canary.html": {
            "canary": _canary(hostile),
            "token": None,
            "ping_url": "http://h/checkin/<token>",
            "channel_names": {"chn_x": hostile},
            "history": {
                "checkins": [
                    {"at": "2026-01-01T00:00:00.000Z", "kind": "success", "message": hostile}
                ],
                "flips": [],
            },
            "attempts": {
                "attempts": [
                    {
                        "at": None,
                        "status": "down",
                        "reason": "missed",
                        "channel_kind": "webhook",
                        "channel_id": "chn_x",
                        "attempt": 1,
                        "ok": False,
                        "detail": hostile,
                    }
                ]
            },
            "strip": svg.strip([], []),
            "durations": [],
        },
        "admin.html": {
            "keys": [
                {
                    "id": "key_1",
                    "name": hostile,
                    "scope": "read",
                    "rate_per_minute": 1,
                    "burst": 1,
                    "created_at": None,
                    "last_used_at": None,
                    "revoked_at": None,
                }
            ],
            "key_names": {"key_1": hostile},
            "channels": [{"id": "chn_x", "name": hostile, "kind": "webhook", "url": hostile}],
            "channel_names": {"chn_x": hostile},
            "routes": [
                {
                    "id": "rte_1",
                    "priority": 1,
                    "type": "any",
                    "name": hostile,
                    "mode": "silent",
                    "channels": ["chn_x"],
                }
            ],
            "rejections": {
                "rejections": [{"key_id": "key_1", "reason": "invalid", "requests": 1, "events": 1}]
            },
            "created_key": {"name": hostile, "scope": "read", "key": hostile},
            "created_channel": None,
            "tested": None,
            "error": hostile,
        },
        "events.html": {
            "form": events_form({"names": hostile[:200]}),
            "names": [hostile],
            "interval": 60,
            "chart": svg.line_chart([svg.Series(hostile, [(0, 1)])], hostile),
            "top": {
                "names": [
                    {"name": hostile, "count": 1, "previous": 0, "change": 1, "change_pct": None}
                ]
            },
            "errors": {
                "errors": [
                    {
                        "name": hostile,
                        "count": 1,
                        "first_seen": None,
                        "last_seen": None,
                        "last_message": hostile,
                        "new": True,
                    }
                ]
            },
            "quantiles": None,
            "ranges": ["24h"],
            "newest": {
                "events": [
                    {
                        "ts": None,
                        "type": "event",
                        "message": hostile,
                        "value": 1.0,
                        "meta": {hostile: hostile},
                    }
                ],
                "next_cursor": hostile,
            },
        },
        "errors.html": {
            "form": events_form({}),
            "ranges": ["24h"],
            "errors": {
                "errors": [
                    {
                        "name": hostile,
                        "count": 1,
                        "first_seen": None,
                        "last_seen": None,
                        "last_message": hostile,
                        "new": True,
                    }
                ]
            },
        },
        "canary_form.html": {
            "canary": None,
            "values": {"name": hostile},
            "error": hostile,
            "channels": [{"id": "chn_x", "name": hostile, "kind": "slack"}],
        },
        "error.html": {"message": hostile},
    }
    for template, context in pages.items():
        html = env.get_template(template).render(**{**common, "title": hostile, **context})
        _assert_inert(html)


def test_every_page_answer_carries_a_strict_policy() -> None:
    response = render.page("error.html", {"title": "t", "message": "m"})
    policy = response.headers["content-security-policy"]
    assert (
        "script-src 'self'" in policy
        and "unsafe-inline" not in policy
        and "frame-ancestors 'none'" in policy
    )
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
