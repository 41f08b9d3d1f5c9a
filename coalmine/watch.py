"""`coalmine canaries watch`: the canaries' status changes, live, one line each. It asks the
admin API for the list every second (what `coalmine canaries list` shows) and prints what
changed: the service's own status, `late` included, so nothing new is computed here."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TextIO

from schemas.times import iso_utc

View = dict[str, Any]


def status_changes(before: dict[str, View], after: dict[str, View]) -> list[dict[str, Any]]:
    """What changed between two lists of canaries (by id): new ones, status changes, deleted
    ones; `from`/`to` are statuses (None: it did not exist)."""
    changes = []
    for canary_id, now in after.items():
        was = before.get(canary_id)
        if was is None or was["status"] != now["status"]:
            changes.append(_change(now, was["status"] if was else None, now["status"]))
    for canary_id, was in before.items():
        if canary_id not in after:
            changes.append(_change(was, was["status"], None))
    return changes


def _change(canary: View, old: str | None, new: str | None) -> dict[str, Any]:
    change = {"id": canary["id"], "name": canary["name"], "from": old, "to": new}
    if new == "down" and canary.get("down_after"):
        change["since"] = canary["down_after"]
    if canary.get("last_message"):
        change["last_message"] = canary["last_message"]
    return change


def line_of(change: dict[str, Any], at: float) -> str:
    old, new = change["from"] or "(created)", change["to"] or "(deleted)"
    text = f"{iso_utc(at)}  {change['name']} ({change['id']})  {old} -> {new}"
    if change.get("last_message"):
        text += f"  last message: {change['last_message'][:80]!r}"
    return text


def watch(
    fetch: Callable[[], list[View]],
    out: TextIO,
    as_json: bool,
    every_s: float = 1.0,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Until interrupted: the canaries as they stand, then each change as it is seen."""
    known: dict[str, View] = {}
    first = True
    while True:
        current = {c["id"]: c for c in fetch()}
        at = now()
        if first and not as_json:
            print(f"watching {len(current)} canaries (Ctrl-C to stop)", file=out)
            for canary in current.values():
                print(
                    f"{iso_utc(at)}  {canary['name']} ({canary['id']})  {canary['status']}",
                    file=out,
                )
        else:
            for change in status_changes(known, current):
                print(
                    json.dumps({"at": iso_utc(at), **change}) if as_json else line_of(change, at),
                    file=out,
                )
        out.flush()
        known, first = current, False
        sleep(every_s)
