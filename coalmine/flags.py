"""argparse types shared by the client commands."""

from __future__ import annotations

import argparse

from queries.params import QueryError, parse_duration

ZERO_DURATIONS = ("0", "0s", "0m", "0h", "0d", "0w")


def duration(raw: str) -> int:
    """Whole seconds from a duration flag (`3600`, `90s`, `10m`, `1h`, `1d`, `1w`): the query
    API's syntax (queries.params), plus 0 (no grace). The service checks the ranges."""
    if raw.strip() in ZERO_DURATIONS:
        return 0
    try:
        return parse_duration(raw, "duration")
    except QueryError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a duration like 90, 90s, 10m, 1h, 1d or 1w"
        ) from None
