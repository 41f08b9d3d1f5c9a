"""Runs that are abnormal for their own canary, as pure functions (opt-in, `abnormal` on the
definition): a run far longer or shorter than the canary's past runs, and a success that comes
too early for its schedule. Each verdict explains itself in the alert's message, e.g. "took
41 min; 2 x the p95 of the last 30 runs is 24 min"."""

from __future__ import annotations

import math

from domain.schedule import next_slot
from schemas.canaries import AbnormalRuns, CanaryDefined, FlipReason


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def human(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def run_verdict(
    rules: AbnormalRuns, past: list[float], took: float
) -> tuple[FlipReason, str] | None:
    """A finished run of `took` seconds against the durations of the canary's past runs."""
    if len(past) < rules.min_runs:
        return None
    n = len(past)
    if rules.longer_than_p95_by is not None:
        limit = percentile(past, 0.95) * rules.longer_than_p95_by
        if took > limit:
            return "run_too_long", (
                f"took {human(took)}; {rules.longer_than_p95_by:g} x the p95 of the last {n} runs is {human(limit)}"
            )
    if rules.shorter_than_p5_by is not None:
        limit = percentile(past, 0.05) / rules.shorter_than_p5_by
        if took < limit:
            return "run_too_short", (
                f"took {human(took)}; the p5 of the last {n} runs / {rules.shorter_than_p5_by:g} is {human(limit)}"
            )
    return None


def early_verdict(canary: CanaryDefined, previous: float | None, at: float) -> str | None:
    """A success at `at` too early after the previous one at `previous`: for a cron canary,
    no slot between them (two runs for one slot); for an interval canary, under half the
    interval apart."""
    rules = canary.abnormal
    if rules is None or not rules.too_early or previous is None:
        return None
    if canary.schedule is not None:
        slot = next_slot(canary.schedule, canary.timezone, previous)
        if slot is not None and at < slot:
            return f"checked in again {human(at - previous)} after the last check-in, before its next slot"
        return None
    if at - previous < canary.interval_s / 2:
        return (
            f"checked in again {human(at - previous)} after the last check-in;"
            f" under half its interval of {human(canary.interval_s)}"
        )
    return None
