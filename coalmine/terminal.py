"""What the CLI prints for people: aligned tables, sparklines, short numbers."""

from __future__ import annotations

from typing import Any

SPARK = "▁▂▃▄▅▆▇█"


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    for line in [columns, *cells]:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())


def sparkline(values: list[float]) -> str:
    top = max(values, default=0)
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(
        SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] for v in values
    )


def short_number(value: float | None) -> str | None:
    """At most three decimals, no trailing zeros: 3.5714285 -> 3.571, 20.0 -> 20."""
    if value is None or isinstance(value, int):
        return None if value is None else str(value)
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
