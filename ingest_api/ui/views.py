"""Pure helpers of the UI's pages: ordering, counting, picking chart intervals, reading the
events page's query string, run durations. No I/O; unit-tested."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from ingest_api.ui.render import STATUS_ORDER

RANGES = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
STATS = ("count", "value_sum", "value_avg")
MAX_NAMES = 6
PAGE_SIZE = 100  # canaries per page of the list
STRIP_CELLS = 16  # check-ins in a row's strip
MAX_POINTS = 400  # per series on a chart: more is not visible in 720 pixels
# What a redirect after a form may announce: fixed texts only, never text from the URL.
DONE_MESSAGES = {
    "created": "Created.",
    "saved": "Saved.",
    "paused": "Paused.",
    "resumed": "Resumed.",
    "snoozed": "Snoozed: it alerts nothing until the window ends.",
    "deleted": "Deleted.",
    "revoked": "Revoked.",
}


def sorted_by_status(views: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Down first, then late, new, up, paused; by name within a status."""
    return sorted(views, key=lambda v: (STATUS_ORDER.get(v["status"], 9), v["name"]))


def status_counts(views: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for view in views:
        counts[view["status"]] = counts.get(view["status"], 0) + 1
    return counts


def chart_interval(range_s: int, picked: str) -> int:
    """The interval asked for, or the smallest of INTERVALS giving at most MAX_POINTS
    buckets; always a multiple of 60 s, so the series query reads the rollups."""
    wanted = INTERVALS.get(picked)
    if wanted and range_s // wanted <= MAX_POINTS * 4:
        return wanted
    return next((s for s in INTERVALS.values() if range_s // s <= MAX_POINTS), INTERVALS["1d"])


def events_form(params: dict[str, str]) -> dict[str, Any]:
    """The events page's pickers from its query string, anything unknown replaced by defaults."""
    names = [n.strip() for n in params.get("names", "").split(",") if n.strip()][:MAX_NAMES]
    picked_range = params.get("range", "24h")
    return {
        "names": names,
        "names_text": ", ".join(names),
        "range": picked_range if picked_range in RANGES else "24h",
        "interval": params.get("interval") if params.get("interval") in INTERVALS else "auto",
        "stat": params.get("stat") if params.get("stat") in STATS else "count",
        "cursor": params.get("cursor", "")[:200],
        "quantiles": params.get("quantiles") == "1",
        "intervals": ["auto", *INTERVALS],
        "stats": STATS,
    }


HOUR_S = 3600


def whole_hours(range_s: int, now: float) -> dict[str, str]:
    """`from`/`to` of the range ending at the next whole hour: top_names then reads hour and
    day rollups only, no raw events (bench/ui.py: 7 d ~190 -> ~80 ms, 30 d ~175 -> ~70 ms);
    the current hour counts what has arrived so far."""
    return whole_buckets(range_s, HOUR_S, now)


def whole_buckets(range_s: int, step_s: int, now: float) -> dict[str, str]:
    """`from`/`to` of the range ending at the next multiple of `step_s`: a chart's series then
    has whole buckets only and reads its grain's rollups alone, no finer rows, no raw events;
    the current bucket counts what has arrived so far."""
    end = (int(now) // step_s + 1) * step_s
    return {"from": str(end - range_s), "to": str(end)}


def paged(items: Sequence[dict[str, Any]], raw_page: str) -> tuple[int, list[dict[str, Any]]]:
    """(page number, its items) of PAGE_SIZE items a page; a bad or too large number is clamped."""
    pages = max(1, -(-len(items) // PAGE_SIZE))
    number = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) < 6 else 1
    number = min(max(number, 1), pages)
    return number, list(items[(number - 1) * PAGE_SIZE : number * PAGE_SIZE])


def epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def series_points(answer: dict[str, Any], stat: str) -> list[tuple[float, float | None]]:
    """(time, value) of a series answer for one statistic."""
    return [(epoch(p["t"]), p.get(stat)) for p in answer["points"]]


def run_durations(checkins: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs from the check-ins, oldest first: each `start` followed by the next success or fail,
    with its length in seconds."""
    runs = []
    started: str | None = None
    for checkin in checkins:
        if checkin["kind"] == "start":
            started = checkin["at"]
        elif started is not None:
            runs.append(
                {
                    "started_at": started,
                    "ended_at": checkin["at"],
                    "outcome": checkin["kind"],
                    "seconds": epoch(checkin["at"]) - epoch(started),
                }
            )
            started = None
    return runs
