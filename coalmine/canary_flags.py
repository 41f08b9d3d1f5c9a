"""`coalmine canaries create`'s flags beyond the interval: schedules, start margin,
thresholds; the request body they make, and how a listing shows a canary's rhythm."""

from __future__ import annotations

import argparse
from typing import Any

from coalmine.flags import duration


def failure_rate(text: str) -> dict[str, int]:
    """`3/10`: down when 3 of the last 10 runs failed."""
    failures, slash, runs = text.partition("/")
    try:
        if slash:
            return {"failures": int(failures), "runs": int(runs)}
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r}: give FAILURES/RUNS, e.g. 3/10")


def add_threshold_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--start-margin", type=duration, help="a run must /start within this after its slot"
    )
    p.add_argument(
        "--failure-threshold", type=int, help="consecutive failures or misses before down (1)"
    )
    p.add_argument(
        "--recovery-threshold", type=int, help="consecutive successes before up again (1)"
    )
    p.add_argument(
        "--failure-rate", type=failure_rate, help="down when X of the last Y runs failed: X/Y"
    )
    p.add_argument(
        "--longer-than-p95-by", type=float, help="a run over F x the p95 of past runs is a failure"
    )
    p.add_argument(
        "--shorter-than-p5-by", type=float, help="a run under the p5 of past runs / F is a failure"
    )
    p.add_argument(
        "--too-early", action="store_true", help="a success before its next slot is a failure"
    )
    p.add_argument("--tag", action="append", help="a tag (repeatable)")
    p.add_argument(
        "--depends-on", action="append", help="held while this canary id is down (repeatable)"
    )
    p.add_argument(
        "--depends-on-tag", action="append", help="held while a canary with this tag is down"
    )


def canary_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": args.name,
        "grace_seconds": args.grace,
        "channels": args.channel or [],
    }
    optional = {
        "interval_seconds": args.interval,
        "schedule": args.schedule,
        "timezone": args.tz,
        "max_runtime_seconds": args.max_runtime,
        "start_margin_seconds": args.start_margin,
        "failure_threshold": args.failure_threshold,
        "recovery_threshold": args.recovery_threshold,
        "failure_rate": args.failure_rate,
        "tags": args.tag,
        "depends_on": args.depends_on,
        "depends_on_tags": args.depends_on_tag,
    }
    body.update({field: value for field, value in optional.items() if value is not None})
    abnormal = {
        "longer_than_p95_by": args.longer_than_p95_by,
        "shorter_than_p5_by": args.shorter_than_p5_by,
        "too_early": args.too_early or None,
    }
    if any(value is not None for value in abnormal.values()):
        body["abnormal"] = {field: value for field, value in abnormal.items() if value is not None}
    return body


def every(canary: dict[str, Any]) -> str:
    """A canary's rhythm in a listing: `3600s`, or `0 3 * * * Europe/Paris`."""
    if canary.get("schedule"):
        return f"{canary['schedule']} {canary.get('timezone') or 'UTC'}"
    return f"{canary['interval_seconds']}s"
