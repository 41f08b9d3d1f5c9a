"""`coalmine import-healthchecks FILE`: canaries from a Healthchecks API v3 export (the JSON of
`GET /api/v3/checks/`), printing each one's new ping URLs.

Per check: `name` (else its slug), `slug`, `timeout` -> interval, `grace`, `schedule` + `tz`
-> a cron canary (an OnCalendar schedule is skipped, saying so). A check's ping UUID (`uuid`,
or the end of `ping_url`; exports made with a read-only key carry neither) becomes the
canary's token, so `https://hc-ping.com/<uuid>` keeps working as `<coalmine>/ping/<uuid>`
once the host is changed. A paused check is created paused. `desc`, tags and Healthchecks'
channels have no counterpart here: `--channel` gives every imported canary channels of ours.
A check whose name (or token) exists already is reported and left as it is, so the import can
be run again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coalmine.client import ServiceError
from runtime.control_registry import is_uuid
from schemas.canaries import slugify
from schemas.errors import ExportUnreadable


def read_export(path: Path) -> list[dict[str, Any]]:
    try:
        export = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ExportUnreadable(f"{path}: {exc}") from None
    checks = export.get("checks") if isinstance(export, dict) else export
    if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
        raise ExportUnreadable(
            f'{path}: expected {{"checks": [...]}} as GET /api/v3/checks/ answers'
        )
    return checks


def canary_spec(check: dict[str, Any], channels: list[str]) -> dict[str, Any] | str:
    """The admin API body that re-creates a check, or why it cannot be imported."""
    name = check.get("name") or check.get("slug")
    if not name:
        return "a check without a name or slug"
    spec: dict[str, Any] = {
        "name": name,
        "grace_seconds": int(check.get("grace") or 0),
        "channels": channels,
    }
    schedule = check.get("schedule")
    if schedule:
        if "\n" in schedule.strip() or len(schedule.split()) != 5:
            return f"{name}: OnCalendar schedules ({schedule!r}) are not supported; cron ones are"
        spec.update(schedule=schedule, timezone=check.get("tz") or "UTC")
    elif check.get("timeout"):
        spec["interval_seconds"] = int(check["timeout"])
    else:
        return f"{name}: neither a timeout nor a schedule"
    slug = check.get("slug")
    if slug and slug != slugify(name):
        spec["slug"] = slug
    code = check.get("uuid") or str(check.get("ping_url") or "").rstrip("/").rpartition("/")[2]
    if code and is_uuid(code):
        spec["token"] = code
    return spec


def import_checks(
    client: Any, checks: list[dict[str, Any]], channels: list[str]
) -> list[dict[str, Any]]:
    """Create a canary per check; one outcome per check: created (with its token and slug),
    or skipped/failed with the reason."""
    outcomes = []
    for check in checks:
        spec = canary_spec(check, channels)
        if isinstance(spec, str):
            outcomes.append({"name": check.get("name"), "outcome": "skipped", "reason": spec})
            continue
        try:
            created = client.call("POST", "/api/v1/admin/canaries", json=spec)
            if check.get("status") == "paused":
                client.call(
                    "PATCH", f"/api/v1/admin/canaries/{created['id']}", json={"paused": True}
                )
        except ServiceError as exc:
            exists = str(exc).startswith("409")
            outcomes.append(
                {
                    "name": spec["name"],
                    "outcome": "exists" if exists else "failed",
                    "reason": str(exc),
                }
            )
            continue
        outcomes.append(
            {"name": created["name"], "outcome": "created", "id": created["id"], "token": created["token"],
             "slug": created["slug"], "kept_uuid": "token" in spec}
        )  # fmt: skip
    return outcomes
