"""A public status page of the canaries of one tag, as a pure function: their names and
statuses only (no token, message, schedule or id), worst first. Signing and serving are the
API's (ingest_api.status_page)."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from domain.badges import overall

STATUS_TEXT = {
    "down": "Down",
    "late": "Late",
    "new": "Waiting for its first check-in",
    "up": "Up",
    "paused": "Paused",
    "maintenance": "In maintenance",
}
WORST_FIRST = {status: rank for rank, status in enumerate(STATUS_TEXT)}
HEADLINE = {"up": "All systems up", "late": "Some checks are late", "down": "Some checks are down"}
REFRESH_S = 60  # a status page left open on a wall screen: reloaded, no script needed
STYLE = (  # inline, allowed by its hash in the page's CSP (ingest_api.status_page)
    "body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}"
    "li{display:flex;justify-content:space-between;padding:.5rem 0;border-bottom:1px solid #ddd}"
    ".down{color:#c0392b}.late{color:#d35400}.up{color:#27ae60}"
)


def status_rows(canaries: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(name, status) pairs, worst status first, then by name."""
    return sorted(canaries, key=lambda row: (WORST_FIRST.get(row[1], len(WORST_FIRST)), row[0]))


def status_page_html(tag: str, canaries: Iterable[tuple[str, str]], updated: str) -> str:
    rows = status_rows(canaries)
    worst, _ = overall(status for _, status in rows)
    items = "\n".join(
        f'<li><span>{escape(name)}</span><span class="{escape(status)}">'
        f"{escape(STATUS_TEXT.get(status, status))}</span></li>"
        for name, status in rows
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><meta http-equiv="refresh"'
        f' content="{REFRESH_S}"><title>{escape(tag)} status</title>'
        f"<style>{STYLE}</style></head>\n<body><h1>{escape(tag)}</h1>"
        f'<p class="{worst}"><strong>{HEADLINE[worst]}</strong></p>\n<ul>\n{items}\n</ul>\n'
        f"<p><small>Updated {escape(updated)}</small></p></body></html>\n"
    )
