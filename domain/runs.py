"""A canary's runs from its check-ins, as a pure function: each success or failure paired with
the start it finishes, by run id (`rid`) when both have one, else with the latest start not yet
finished, as Healthchecks measures durations. A finish without a start is no run; a start
never finished is a run without an end."""

from __future__ import annotations

from typing import Any, NamedTuple

FINISHES = ("success", "fail")


class Ping(NamedTuple):
    at: float
    kind: str
    rid: str = ""


def pair_runs(pings: list[Ping]) -> list[dict[str, Any]]:
    """Runs, oldest start first: started_at, ended_at, duration_s, outcome (success, fail or
    unfinished) and rid. `pings` in time order; `log` pings are ignored."""
    runs: list[dict[str, Any]] = []
    open_runs: list[dict[str, Any]] = []  # started, not yet finished, oldest first
    for ping in pings:
        run: dict[str, Any] | None
        if ping.kind == "start":
            run = {
                "started_at": ping.at,
                "ended_at": None,
                "duration_s": None,
                "outcome": "unfinished",
                "rid": ping.rid,
            }
            runs.append(run)
            open_runs.append(run)
        elif ping.kind in FINISHES and open_runs:
            run = _finished_run(open_runs, ping.rid)
            if run is None:
                continue
            open_runs.remove(run)
            run.update(ended_at=ping.at, duration_s=ping.at - run["started_at"], outcome=ping.kind)
            if not ping.rid:
                # Without run ids, a finish ends the latest start: older ones never finished.
                open_runs.clear()
    return runs


def _finished_run(open_runs: list[dict[str, Any]], rid: str) -> dict[str, Any] | None:
    if rid:
        return next((r for r in reversed(open_runs) if r["rid"] == rid), None)
    return open_runs[-1]


def durations(runs: list[dict[str, Any]]) -> list[float]:
    return [r["duration_s"] for r in runs if r["duration_s"] is not None]
