"""Status badges (SVG, JSON, Shields endpoint) of a tag or a canary, as pure functions: the
overall status of some canaries, and the three bodies. Signing is the API's (ingest_api.badges).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any, Literal

BadgeStatus = Literal["up", "late", "down"]
COLORS: dict[BadgeStatus, tuple[str, str]] = {  # (SVG fill, Shields color name)
    "up": ("#4c1", "brightgreen"),
    "late": ("#fe7d37", "orange"),
    "down": ("#e05d44", "red"),
}
CHAR_WIDTH_PX = 7  # Verdana 11px, near enough for a badge


def overall(statuses: Iterable[str]) -> tuple[BadgeStatus, dict[str, int]]:
    """Down if any is down, late if any is late, else up (new, paused and in maintenance
    count as up: nothing is wrong with them); and the counts."""
    counts = {"total": 0, "late": 0, "down": 0}
    for status in statuses:
        counts["total"] += 1
        if status in ("late", "down"):
            counts[status] += 1
    worst: BadgeStatus = "down" if counts["down"] else ("late" if counts["late"] else "up")
    return worst, counts


def as_json(status: BadgeStatus, counts: dict[str, int]) -> dict[str, Any]:
    return {"status": status, **counts}


def as_shields(label: str, status: BadgeStatus) -> dict[str, Any]:
    """shields.io's endpoint badge: https://shields.io/badges/endpoint-badge"""
    return {"schemaVersion": 1, "label": label, "message": status, "color": COLORS[status][1]}


def as_svg(label: str, status: BadgeStatus) -> str:
    left = len(label) * CHAR_WIDTH_PX + 10
    right = len(status) * CHAR_WIDTH_PX + 10
    width = left + right
    text = escape(label)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img"'
        f' aria-label="{text}: {status}"><title>{text}: {status}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{COLORS[status][0]}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif"'
        ' font-size="11">'
        f'<text x="{left / 2}" y="14">{text}</text>'
        f'<text x="{left + right / 2}" y="14">{status}</text></g></svg>'
    )
