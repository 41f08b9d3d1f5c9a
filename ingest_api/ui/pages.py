"""The UI's pages (GET): each gathers what it shows from the named queries (through the
query backend, as GET /api/v1/query does) and the admin API's views, then renders it."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from domain.routing_rules import ordered
from ingest_api import admin_canaries as canary_admin
from ingest_api.admin_channels import channel_view
from ingest_api.admin_keys import key_view
from ingest_api.admin_routing import route_view
from ingest_api.services import Services
from ingest_api.ui import render, svg
from ingest_api.ui.auth import Viewer, viewer
from ingest_api.ui.views import (
    DONE_MESSAGES,
    PAGE_SIZE,
    RANGES,
    STRIP_CELLS,
    chart_interval,
    events_form,
    paged,
    run_durations,
    series_points,
    sorted_by_status,
    status_counts,
    whole_buckets,
    whole_hours,
)
from queries import QueryError
from runtime.query_backend import QueryBackendUnavailable

router = APIRouter(include_in_schema=False)


async def run(services: Services, name: str, params: dict[str, str]) -> dict[str, Any] | None:
    """A named query's answer, or None when ClickHouse is away (the page says so)."""
    try:
        return await services.queries.run(name, params)
    except QueryBackendUnavailable:
        return None


def _context(
    request: Request, who: Viewer | None, title: str, nav: str, **more: Any
) -> dict[str, Any]:
    done = request.query_params.get("done", "")
    return {
        "viewer": who,
        "title": title,
        "nav": nav,
        "done": DONE_MESSAGES.get(done, ""),
        "now": time.time(),
        "markup": render.markup,
        **more,
    }


# Every open page asks for the statuses every 2 s (ui.js): within one API process, answers
# younger than this are shared, so ClickHouse sees at most one canary_facts query per second
# however many pages are open. (bench/ui.py waits this long between runs: it measures misses.)
CANARY_VIEWS_TTL_S = 1.0
LIVE_MAX_IDS = 200
# A definition changed (created, edited, paused, deleted) is a new record object: the cache
# is also keyed by their identities, so a change made a moment ago is never hidden.
# (The cache holds the records themselves, so that no id of theirs is reused meanwhile.)
_views_cache: dict[int, tuple[float, tuple[int, ...], tuple[Any, ...], list[dict[str, Any]]]] = {}


async def _canaries(services: Services) -> list[dict[str, Any]] | None:
    records = tuple(services.control.canaries.values())
    definitions = tuple(map(id, records))
    cached = _views_cache.get(id(services))
    if cached and time.monotonic() - cached[0] < CANARY_VIEWS_TTL_S and cached[1] == definitions:
        return cached[3]
    try:
        views = await canary_admin.canary_views(services)
    except QueryBackendUnavailable:
        return None
    _views_cache[id(services)] = (time.monotonic(), definitions, records, views)
    return views


@router.get("/")
async def overview(request: Request) -> Response:
    who = await viewer(request)
    services: Services = request.app.state.services
    views, flips, totals, fresh, rejected = await asyncio.gather(
        _canaries(services),
        run(services, "recent_flips", {"from": "-7d", "limit": "15"}),
        run(services, "totals", {"from": "-24h", "interval": "1h"}),
        run(services, "freshness", {"from": "-5m"}),
        run(services, "rejections", {"from": "-5m"}),
    )
    chart = None
    if totals is not None:
        points = totals["points"]
        step_min = totals["interval_seconds"] / 60
        chart = svg.line_chart(
            [
                svg.Series("events/min", [(p["t"], p["events"] / step_min) for p in points]),
                svg.Series("errors/min", [(p["t"], p["errors"] / step_min) for p in points]),
            ],
            "Events and errors per minute, last 24 h (hourly averages)",
        )
    health = {
        "accepted_per_s": None if fresh is None else fresh["events"] / 300,
        "rejected_per_s": None
        if rejected is None
        else sum(r["requests"] for r in rejected["rejections"]) / 300,
        "p50_ms": fresh and fresh["p50_ms"],
        "p99_ms": fresh and fresh["p99_ms"],
        "sink_lag": services.backpressure.behind,
        "shedding": services.backpressure.shedding,
    }
    context = _context(
        request,
        who,
        "Overview",
        "overview",
        canaries=None if views is None else sorted_by_status(views),
        counts=status_counts(views or []),
        flips=flips,
        chart=chart,
        health=health,
    )
    return render.page("overview.html", context)


@router.get("/canaries")
async def canary_list(request: Request) -> Response:
    who = await viewer(request)
    services: Services = request.app.state.services
    views = await _canaries(services)
    ordered_views = None if views is None else sorted_by_status(views)
    page_number, shown = paged(ordered_views or [], request.query_params.get("page", "1"))
    # The strips of this page's canaries only: a tenth of the read with 1,000 canaries.
    recent = await run(
        services,
        "recent_checkins",
        {"from": "-3d", "per": str(STRIP_CELLS), "ids": ",".join(v["id"] for v in shown)},
    ) if shown else None  # fmt: skip
    strips = {}
    shown_ids = {v["id"] for v in shown}
    for canary_id, checkins in (recent or {}).get("canaries", {}).items():
        if canary_id not in shown_ids:
            continue
        strips[canary_id] = svg.strip(
            [c["kind"] for c in checkins],
            [f"{c['at']} {c['kind']} {c['message']}" for c in checkins],
        )
    context = _context(
        request,
        who,
        "Canaries",
        "canaries",
        canaries=None if views is None else shown,
        total=len(views or []),
        page=page_number,
        pages=-(-len(views or []) // PAGE_SIZE),
        first=(page_number - 1) * PAGE_SIZE,
        counts=status_counts(views or []),
        strips=strips,
    )
    return render.page("canaries.html", context)


@router.get("/canaries/new")
async def canary_new(request: Request) -> Response:
    who = await viewer(request, admin=True)
    services: Services = request.app.state.services
    return render.page(
        "canary_form.html", _canary_form_context(request, who, services, None, {}, "")
    )


def _canary_form_context(
    request: Request,
    who: Viewer,
    services: Services,
    canary: dict[str, Any] | None,
    values: dict[str, Any],
    error: str,
) -> dict[str, Any]:
    channels = sorted(services.control.channels.values(), key=lambda c: c.created_at)
    return _context(
        request,
        who,
        "Edit canary" if canary else "New canary",
        "canaries",
        canary=canary,
        values=values,
        error=error,
        channels=[channel_view(c) for c in channels],
    )


@router.get("/canaries/{canary_id}/edit")
async def canary_edit(canary_id: str, request: Request) -> Response:
    who = await viewer(request, admin=True)
    services: Services = request.app.state.services
    canary = services.control.canaries.get(canary_id)
    if canary is None:
        return _not_found(request, who, "canary")
    view = canary_admin.canary_view(canary, None, time.time())
    values = {
        "name": canary.name,
        "interval": render.duration(canary.interval_s),
        "grace": render.duration(canary.grace_s) if canary.grace_s else "",
        "max_runtime": render.duration(canary.max_runtime_s) if canary.max_runtime_s else "",
        "channels": list(canary.channels),
    }
    return render.page(
        "canary_form.html", _canary_form_context(request, who, services, view, values, "")
    )


@router.get("/canaries/{canary_id}")
async def canary_detail(canary_id: str, request: Request) -> Response:
    who = await viewer(request)
    services: Services = request.app.state.services
    canary = services.control.canaries.get(canary_id)
    if canary is None:
        return _not_found(request, who, "canary")
    params = {"canary_id": canary_id, "from": "-7d"}
    facts, history, attempts = await asyncio.gather(
        run(services, "canary_facts", {}),
        run(services, "canary_history", {**params, "limit": "200"}),
        run(services, "canary_notifications", params),
    )
    fact = next((f for f in (facts or {}).get("canaries", []) if f["canary_id"] == canary_id), None)
    view = canary_admin.canary_view(canary, fact, time.time())
    checkins = list(reversed((history or {}).get("checkins", [])))  # oldest first
    context = _context(
        request,
        who,
        canary.name,
        "canaries",
        canary=view,
        history=history,
        attempts=attempts,
        strip=svg.strip(
            [c["kind"] for c in checkins[-60:]],
            [f"{c['at']} {c['kind']} {c['message']}" for c in checkins[-60:]],
        ),
        durations=run_durations(checkins)[-20:],
        ping_url=f"{str(request.base_url).rstrip('/')}/checkin/<token>",
        channel_names={c.id: c.name for c in services.control.channels.values()},
        token=None,
    )
    return render.page("canary.html", context)


@router.get("/events")
async def events_page(request: Request) -> Response:
    who = await viewer(request)
    services: Services = request.app.state.services
    form = events_form(dict(request.query_params))
    range_s = RANGES[form["range"]]
    interval = chart_interval(range_s, form["interval"])
    window = {**whole_buckets(range_s, interval, time.time()), "interval": str(interval)}
    top_query = run(services, "top_names", {**whole_hours(range_s, time.time()), "limit": "15"})
    if form["names"]:  # the chart and the newest events need not wait for the top names
        names = form["names"]
        top, newest, quantiles, *series = await asyncio.gather(
            top_query,
            _newest(services, form, names[0]),
            _quantiles(services, form, names[0]),
            *(run(services, "series", {**window, "name": n}) for n in names),
        )
    else:
        top = await top_query
        names = [n["name"] for n in (top or {}).get("names", [])[:3]]
        newest, quantiles, *series = await asyncio.gather(
            _newest(services, form, names[0] if names else ""),
            _quantiles(services, form, names[0] if names else ""),
            *(run(services, "series", {**window, "name": n}) for n in names),
        )
    stat = form["stat"]
    chart = svg.line_chart(
        [svg.Series(n, series_points(s, stat)) for n, s in zip(names, series) if s is not None],
        f"{stat} per {render.duration(interval)}, last {form['range']}",
    )
    context = _context(
        request,
        who,
        "Events",
        "events",
        form=form,
        names=names,
        interval=interval,
        chart=chart,
        top=top,
        quantiles=quantiles,
        newest=newest,
        ranges=list(RANGES),
    )
    return render.page("events.html", context)


async def _newest(services: Services, form: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A page of the name's newest events (None without a name, a bad cursor or ClickHouse)."""
    if not name:
        return None
    params = {"from": f"-{form['range']}", "name": name, "limit": "25"}
    if form["cursor"]:
        params["cursor"] = form["cursor"]
    try:
        return await services.queries.run("events", params)
    except (QueryError, QueryBackendUnavailable):
        return None


async def _quantiles(services: Services, form: dict[str, Any], name: str) -> dict[str, Any] | None:
    """Exact quantiles read every value of the range from raw events: on request only."""
    if not name or not form["quantiles"]:
        return None
    return await run(
        services, "percentiles", {"from": f"-{form['range']}", "name": name, "q": "0.5,0.95,0.99"}
    )


@router.get("/events/errors")
async def errors_page(request: Request) -> Response:
    who = await viewer(request)
    services: Services = request.app.state.services
    form = events_form(dict(request.query_params))
    errors = await run(services, "errors", {"from": f"-{form['range']}", "limit": "100"})
    context = _context(
        request, who, "Errors", "errors", form=form, errors=errors, ranges=list(RANGES)
    )
    return render.page("errors.html", context)


@router.get("/admin")
async def admin_page(request: Request) -> Response:
    who = await viewer(request, admin=True)
    services: Services = request.app.state.services
    return render.page("admin.html", await admin_context(request, who, services))


async def admin_context(
    request: Request, who: Viewer, services: Services, **more: Any
) -> dict[str, Any]:
    rejected = await run(services, "rejections", {"from": "-24h"})
    keys = [key_view(k) for k in services.registry.all()]
    channels = sorted(services.control.channels.values(), key=lambda c: c.created_at)
    return _context(
        request,
        who,
        "Admin",
        "admin",
        keys=keys,
        key_names={k["id"]: k["name"] for k in keys},
        channels=[channel_view(c) for c in channels],
        channel_names={c.id: c.name for c in channels},
        routes=[route_view(r) for r in ordered(services.control.routes.values())],
        rejections=rejected,
        **{"created_key": None, "created_channel": None, "tested": None, "error": "", **more},
    )


@router.get("/ui/live")
async def live(request: Request) -> Response:
    """The canaries' statuses for the pages' live updates (ui.js asks every few seconds):
    of the canaries in `ids` (comma-separated, those on the page), and the counts of all."""
    await viewer(request)
    services: Services = request.app.state.services
    views = await _canaries(services)
    if views is None:
        return render.json({"ok": False}, 503)
    wanted = set(request.query_params.get("ids", "").split(",")[:LIVE_MAX_IDS])
    return render.json(
        {
            "ok": True,
            "at": dt.datetime.now(dt.UTC).isoformat(),
            "canaries": {
                v["id"]: {
                    "status": v["status"],
                    "last_checkin": render.ago(v["last_checkin_at"]),
                    "last_message": v["last_message"] or "",
                    "next_due": render.ago(v["next_due_at"]) if v["next_due_at"] else "—",
                }
                for v in views
                if v["id"] in wanted
            },
            "counts": status_counts(views),
        }
    )


def _not_found(request: Request, who: Viewer, what: str) -> Response:
    context = _context(request, who, "Not found", "", message=f"No such {what}.")
    return render.page("error.html", context, 404)
