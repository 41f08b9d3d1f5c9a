"""Notifications other than canary flips, on Topic.ALERTS, delivered by the notifier agent
through the same channels as flips (webhook, Slack-compatible, e-mail). Each carries an id
derived from what caused it, so one emitted twice (a replay after a crash) is sent once.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.wire import EventType


class ErrorAlert(msgspec.Struct, frozen=True, tag="error.alert", tag_field="kind"):
    """The first occurrence of a name (per key) within its route's quiet window.

    `id` is derived from the event that opened the window (`alert:<event_id>`), so a worker
    that re-reads the events after a crash emits the same alert, which the notifier sends once.
    """

    id: str
    key_id: str
    event_type: EventType
    name: str
    message: str
    at: float  # the event's time (its ts, else its arrival)
    event_id: str
    quiet_window_s: int
    channels: list[str]
    route_id: str | None = None  # None: the default route


class DigestLine(msgspec.Struct, frozen=True, array_like=True):
    event_type: EventType
    name: str
    count: int
    previous: int  # the count of the period before, of the same length
    first_seen: bool  # never seen before this period


class DigestError(msgspec.Struct, frozen=True, array_like=True):
    name: str
    count: int
    last_seen: float
    last_message: str


class Digest(msgspec.Struct, frozen=True, tag="digest", tag_field="kind"):
    """One digest period of one route (`digest:<route id or "default">:<end>`)."""

    id: str
    route_id: str | None
    channels: list[str]
    period: Literal["hourly", "daily"]
    timezone: str
    start: float
    end: float
    lines: list[DigestLine]  # by count, descending
    errors: list[DigestError]  # errors of the period with their last message


AlertRecord = ErrorAlert | Digest
alert_decoder = msgspec.json.Decoder(AlertRecord)  # type: ignore[arg-type]
