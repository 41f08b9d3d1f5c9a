"""Rendering of the web UI: one Jinja2 environment with autoescape on for every template, the
security headers every UI answer carries, and small formatting helpers (pure)."""

from __future__ import annotations

import datetime as dt
import functools
import time
from pathlib import Path
from typing import Any

import jinja2
import msgspec
from markupsafe import Markup
from starlette.responses import HTMLResponse, Response

from ingest_api.ui import svg

HERE = Path(__file__).parent
_json_encode = msgspec.json.encode
ASSETS = "/ui-assets"

# No inline script or style anywhere: scripts, styles and fonts come from this origin only,
# forms post only here, and no other site may frame a page (clickjacking).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGE_DEFAULTS: dict[str, Any] = {"viewer": None, "nav": "", "done": "", "now": 0.0}
# How long the canary page offers to snooze a canary for (ui.actions.snooze_canary).
SNOOZE_CHOICES_MIN = (15, 30, 60, 120, 240, 480, 1440)
STATUS_ORDER = {"down": 0, "late": 1, "new": 2, "up": 3, "paused": 4}


def ago(iso: str | None, now: float | None = None) -> str:
    """`3m ago`, `in 2h`, or `never` for an ISO 8601 time."""
    if not iso:
        return "never"
    try:
        moment = dt.datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return iso
    delta = (now if now is not None else time.time()) - moment
    text = duration(abs(delta))
    return f"{text} ago" if delta >= 0 else f"in {text}"


def duration(seconds: float | None) -> str:
    """Seconds as the largest fitting units: 45s, 5m, 1h30m, 2d."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            whole, rest = divmod(seconds, size)
            smaller = {"d": ("h", 3600), "h": ("m", 60), "m": ("s", 1)}[unit]
            tail = rest // smaller[1]
            return f"{whole}{unit}{tail}{smaller[0]}" if tail else f"{whole}{unit}"
    return f"{seconds}s"


def short_time(iso: str | None) -> str:
    """`2026-07-02 10:00:03` (UTC) from an ISO 8601 time."""
    if not iso:
        return "—"
    return iso.replace("T", " ").replace("Z", "")[:19]


def clip(text: Any, limit: int = 120) -> str:
    """A long user text cut for a table cell (the full text stays in the cell's title)."""
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def visible_controls(value: Any) -> Any:
    """Jinja's `finalize`: every printed string has its bidi controls made visible (markup
    built by the UI itself, already escaped, is left alone)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return value.translate(svg.BIDI_CONTROLS)
    return value


def json_text(value: Any) -> str:
    """A value as JSON text (plain text: the template escapes it like any other)."""
    return _json_encode(value).decode()


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every {{ }} is escaped, whatever the template's name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=visible_controls,
    )
    env.filters.update(
        json_text=json_text,
        ago=ago,
        duration=duration,
        short_time=short_time,
        clip=clip,
        number=svg.format_number,
    )
    env.globals.update(assets=ASSETS, snooze_choices=SNOOZE_CHOICES_MIN)
    return env


def page(
    template: str, context: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    html = environment().get_template(template).render(**{**PAGE_DEFAULTS, **context})
    return HTMLResponse(html, status, {**SECURITY_HEADERS, **(headers or {})})


def markup(value: str) -> Markup:
    """Markup built by svg (already escaped) passed to a template."""
    return Markup(value)


def json(body: Any, status: int = 200) -> Response:
    return Response(_json_encode(body), status, SECURITY_HEADERS, media_type="application/json")
