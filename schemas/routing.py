"""Routing rules: which events and errors notify whom, and how (immediately, in a digest, or
not at all). Records of the control topic, like canaries and channels; managed through
/api/v1/admin/routes. The pure matcher is domain.routing_rules.

A rule matches on `type` ("event", "error" or "any"), a glob over the event name
(fnmatch syntax, case-sensitive: `*`, `?`, `[abc]`) and optionally one key (a key is a
project: one key per app or job). The first matching rule by (priority, created_at) decides.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from schemas.canaries import ChannelIds

RouteType = Literal["event", "error", "any"]
# immediate: alert on the first occurrence of a name within `quiet_window_s`; later occurrences
#            go to `digest` when one is set. digest: only in the digest. silent: nowhere.
RouteMode = Literal["immediate", "digest", "silent"]
DigestPeriod = Literal["hourly", "daily"]

ROUTE_PATTERN_MAX_CHARS = 200
QUIET_WINDOW_MIN_S = 60
QUIET_WINDOW_MAX_S = 7 * 86400
DEFAULT_QUIET_WINDOW_S = 3600
DEFAULT_PRIORITY = 100

Pattern = Annotated[str, msgspec.Meta(min_length=1, max_length=ROUTE_PATTERN_MAX_CHARS)]
QuietWindow = Annotated[int, msgspec.Meta(ge=QUIET_WINDOW_MIN_S, le=QUIET_WINDOW_MAX_S)]
TimeOfDay = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class DigestSchedule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When a digest period ends: `hourly` at minute `at`[3:] of every hour, or `daily` at
    `at` (HH:MM) in `timezone` (an IANA name; DST is followed: a day may be 23 or 25 h)."""

    period: DigestPeriod = "daily"
    at: TimeOfDay = "09:00"
    timezone: str = "UTC"


class RouteDefined(msgspec.Struct, frozen=True, tag="route.defined", tag_field="type"):
    id: str
    match_type: RouteType
    name: Pattern
    channels: ChannelIds
    mode: RouteMode
    created_at: float
    changed_at: float
    key_id: str | None = None  # None: every key
    digest: DigestSchedule | None = None  # mode digest: required; immediate: optional
    quiet_window_s: QuietWindow = DEFAULT_QUIET_WINDOW_S
    priority: int = DEFAULT_PRIORITY


class RouteDeleted(msgspec.Struct, frozen=True, tag="route.deleted", tag_field="type"):
    id: str
    deleted_at: float
