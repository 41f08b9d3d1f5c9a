"""Quiet times: maintenance windows (canaries alert nothing) and silences (error alerts by
name pattern), records of the control topic like canaries and routes, managed through
/api/v1/admin/windows and /api/v1/admin/silences (docs/checkins.md, "Maintenance windows").
The pure logic is domain.quiet.

Neither is ever deleted: ending one early is the same record with `ends_at` set to that
moment (the latest record of an id stands, by `changed_at`), so the worker knows when a
window ended and restarts the deadlines it held from there.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

COMMENT_MAX_CHARS = 500
AUTHOR_MAX_CHARS = 100
WINDOW_DURATION_MAX_S = 31 * 86400
SNOOZE_MAX_MINUTES = 7 * 24 * 60
SNOOZE_DEFAULT_MINUTES = 60
MAX_TARGETS = 100

Comment = Annotated[str, msgspec.Meta(max_length=COMMENT_MAX_CHARS)]
Author = Annotated[str, msgspec.Meta(max_length=AUTHOR_MAX_CHARS)]
SilenceType = Literal["error", "event", "any"]


class WindowDefined(msgspec.Struct, frozen=True, tag="window.defined", tag_field="type"):
    """A maintenance window: during it the canaries it covers send no alert, and a deadline
    that falls in it restarts from its end.

    One-off: from `starts_at` until `ends_at`. Open-ended: `ends_at` None (until ended).
    Recurring: each slot of the cron `schedule` in `timezone` opens it for `duration_s`,
    from `starts_at` on and until `ends_at` if set. It covers the canaries of `canaries`
    (ids), those carrying one of `tags`, or every canary with `everything`."""

    id: str
    starts_at: float
    created_at: float
    changed_at: float
    ends_at: float | None = None
    schedule: str | None = None
    timezone: str | None = None
    duration_s: int = 0
    canaries: list[str] = []
    tags: list[str] = []
    everything: bool = False
    comment: str = ""
    created_by: str = ""


class SilenceDefined(msgspec.Struct, frozen=True, tag="silence.defined", tag_field="type"):
    """Alertmanager's silence for error alerts: from `starts_at` until `ends_at`, an alert
    whose name matches the glob `name` (fnmatch, as routing rules), of `match_type` and of
    key `key_id` if set, is not sent. `comment` and `created_by` say who and why."""

    id: str
    name: str
    starts_at: float
    ends_at: float
    comment: str
    created_by: str
    created_at: float
    changed_at: float
    match_type: SilenceType = "any"
    key_id: str | None = None
