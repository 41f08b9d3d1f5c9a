"""Parsing of query parameters: times (ISO 8601, epoch seconds, or relative like -7d) and
intervals (60, 1m, 1h, 1d). Pure functions with an explicit `now`."""

from __future__ import annotations

import datetime as dt
import re

from schemas.errors import QueryError
from schemas.wire import TS_MAX, TS_MIN

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
EVENT_TYPES = ("event", "error")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RELATIVE = re.compile(r"^-(\d+)([smhdw])$")
_DURATION = re.compile(r"^(\d{1,9})([smhdw]?)$")
MAX_DURATION_S = 366 * 86400


def parse_time(raw: str, now: dt.datetime, field: str) -> dt.datetime:
    """ISO 8601 with offset, epoch seconds, `now`, or `-<n><unit>` before now."""
    raw = raw.strip()
    if raw == "now":
        return now
    invalid = QueryError(
        f"`{field}` must be ISO 8601, epoch seconds or relative like -7d; got {raw[:40]!r}"
    )
    relative = _RELATIVE.match(raw)
    try:
        if relative:
            return now - dt.timedelta(seconds=int(relative[1]) * _UNITS[relative[2]])
        try:
            return dt.datetime.fromtimestamp(float(raw), UTC)
        except ValueError:
            pass
        parsed = dt.datetime.fromisoformat(raw)
        if parsed.tzinfo is None:
            raise QueryError(f"`{field}` needs a timezone offset, e.g. 2026-07-02T10:00:00Z")
        return parsed.astimezone(UTC)
    except QueryError:
        raise
    except (ValueError, OverflowError, OSError):
        raise invalid from None


def parse_duration(raw: str, field: str) -> int:
    """Whole seconds from `90`, `90s`, `5m`, `1h`, `1d`, `1w`."""
    match = _DURATION.match(raw.strip())
    seconds = int(match[1]) * _UNITS[match[2] or "s"] if match else 0
    if not 0 < seconds <= MAX_DURATION_S:
        raise QueryError(f"`{field}` must be a duration from 1s to 366d, like 60, 5m, 1h or 1d")
    return seconds


def time_range(
    params: dict[str, str], now: dt.datetime, default_from: str
) -> tuple[dt.datetime, dt.datetime]:
    start = parse_time(params.get("from") or default_from, now, "from")
    end = parse_time(params.get("to") or "now", now, "to")
    if start >= end:
        raise QueryError("`from` must be before `to`")
    return start, end


def required(params: dict[str, str], field: str) -> str:
    value = params.get(field)
    if not value:
        raise QueryError(f"`{field}` is required")
    return value


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_ms(epoch_ms: int) -> str:
    """A stored time (epoch ms) as ISO 8601 UTC with milliseconds."""
    moment = EPOCH + dt.timedelta(milliseconds=epoch_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_limit(params: dict[str, str], default: int, maximum: int, field: str = "limit") -> int:
    raw = (params.get(field) or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise QueryError(f"`{field}` must be a whole number from 1 to {maximum}")
    return int(raw)


def parse_type(params: dict[str, str]) -> str | None:
    """An optional `type` filter: event or error (absent or empty: both)."""
    raw = params.get("type") or None
    if raw is not None and raw not in EVENT_TYPES:
        raise QueryError("`type` must be event or error")
    return raw


def epoch_ms(moment: dt.datetime) -> int:
    """Epoch milliseconds rounded up: for ms-precision `ts`, ts >= t exactly when
    ts >= epoch_ms(t), and ts < t exactly when ts < epoch_ms(t)."""
    whole, rest = divmod(moment - EPOCH, dt.timedelta(milliseconds=1))
    return whole + (1 if rest else 0)


def stored_range_ms(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """[start, end) in epoch ms, clipped to the times an event can have (1970-2100, as the
    ingest contract allows): the bounds then fit every column type they are compared with."""
    lowest, highest = epoch_ms(TS_MIN), epoch_ms(TS_MAX)
    return min(max(epoch_ms(start), lowest), highest), min(max(epoch_ms(end), lowest), highest)
