"""SVG charts drawn on the server: pure functions from numbers to markup (no I/O, no script).

Colours and fonts come from classes styled by ui.css (the Content-Security-Policy forbids
inline styles); every label is escaped. A chart of N points is one <path> per series, so a
page with a 30-day minute series stays small.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 12, 12, 28
MAX_SERIES_CLASSES = 6
# Bidirectional controls (U+202A-U+202E, U+2066-U+2069, LRM/RLM/ALM) in user text could make
# a name read backwards or pull the text after it along: shown as visible code points instead.
BIDI_CONTROLS = {
    cp: f"[U+{cp:04X}]"
    for cp in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)
}


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float | None]]  # (epoch seconds, value or None for no value)


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (1 for nothing)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def format_number(value: float) -> str:
    """Short axis and table numbers: 950, 1.2k, 3.4M, 0.25."""
    magnitude = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    if value == int(value):
        return str(int(value))
    return f"{value:.3g}"


def _time_label(epoch: float, span_s: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    if span_s <= 2 * 86400:
        return moment.strftime("%H:%M")
    return moment.strftime("%m-%d %H:%M") if span_s <= 8 * 86400 else moment.strftime("%m-%d")


def line_chart(series: Sequence[Series], title: str, unit: str = "") -> Markup:
    """Lines over time for one or more series sharing the axes; gaps where a value is None."""
    times = [t for s in series for t, _ in s.points]
    values = [v for s in series for _, v in s.points if v is not None and math.isfinite(v)]
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    top = nice_max(max(values, default=0.0))
    bottom = min(0.0, min(values, default=0.0))
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    span = max(t1 - t0, 1.0)

    def x(t: float) -> float:
        return PAD_LEFT + (t - t0) / span * plot_w

    def y(v: float) -> float:
        return PAD_TOP + plot_h - (v - bottom) / (top - bottom) * plot_h

    parts = [
        Markup(
            '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}" '
            'xmlns="http://www.w3.org/2000/svg">'
        ).format(w=WIDTH, h=HEIGHT, t=title.translate(BIDI_CONTROLS)),
        Markup("<title>{}</title>").format(title.translate(BIDI_CONTROLS)),
    ]
    for i in range(5):  # horizontal grid lines and their values
        value = bottom + (top - bottom) * i / 4
        gy = y(value)
        parts.append(
            Markup(
                '<line class="grid" x1="{a}" x2="{b}" y1="{y:.1f}" y2="{y:.1f}"/>'
                '<text class="axis" x="{tx}" y="{ty:.1f}" text-anchor="end">{label}</text>'
            ).format(
                a=PAD_LEFT,
                b=WIDTH - PAD_RIGHT,
                y=gy,
                tx=PAD_LEFT - 6,
                ty=gy + 4,
                label=format_number(value) + unit,
            )
        )
    if times:
        for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
            parts.append(
                Markup(
                    '<text class="axis" x="{x:.1f}" y="{y}" text-anchor="{a}">{label}</text>'
                ).format(
                    x=PAD_LEFT + frac * plot_w,
                    y=HEIGHT - 8,
                    a=anchor,
                    label=_time_label(t0 + frac * span, span),
                )
            )
    for index, one in enumerate(series):
        path = _path(
            [(x(t), y(v)) if v is not None and math.isfinite(v) else None for t, v in one.points]
        )
        css = f"series s{index % MAX_SERIES_CLASSES}"
        parts.append(
            Markup('<path class="{c}" d="{d}"><title>{label}</title></path>').format(
                c=css, d=path, label=one.label.translate(BIDI_CONTROLS)
            )
        )
    if not values:
        parts.append(
            Markup(
                '<text class="empty" x="{x}" y="{y}" text-anchor="middle">no data</text>'
            ).format(x=WIDTH / 2, y=HEIGHT / 2)
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _path(points: Sequence[tuple[float, float] | None]) -> str:
    """An SVG path through the points, lifting the pen over gaps; one lone point is a dot."""
    commands: list[str] = []
    pen_down = False
    for point in points:
        if point is None:
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{point[0]:.1f},{point[1]:.1f}")
        if not pen_down:
            commands.append("l0.01,0")  # a visible dot even when nothing follows
        pen_down = True
    return " ".join(commands)


STRIP_CELL, STRIP_GAP = 8, 2


STRIP_KINDS = frozenset({"success", "fail", "start"})


def strip(kinds: Sequence[str], labels: Sequence[str] | None = None) -> Markup:
    """Recent check-ins oldest to newest as a row of cells, one class per kind (ok/fail/start).
    Built with plain string joins and markupsafe's C escape: Markup.format per cell cost ~1.5 ms
    a strip, 150 ms for a page of 100 canaries."""
    labels = labels or [""] * len(kinds)
    step = STRIP_CELL + STRIP_GAP
    width = max(1, len(kinds)) * step
    cells = "".join(
        f'<rect class="cell {kind if kind in STRIP_KINDS else "other"}" x="{i * step}" y="0" '
        f'width="{STRIP_CELL}" height="{STRIP_CELL * 2}"><title>{escape(label.translate(BIDI_CONTROLS))}</title></rect>'
        for i, (kind, label) in enumerate(zip(kinds, labels))
    )
    height = STRIP_CELL * 2
    return Markup(
        f'<svg class="strip" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg">{cells}</svg>'
    )
