"""coalmine.flags.duration: `--interval 1h --grace 10m` on the CLI."""

from __future__ import annotations

import argparse

import pytest

from coalmine.cli import build_parser
from coalmine.flags import duration


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("3600", 3600),
        ("90s", 90),
        ("10m", 600),
        ("1h", 3600),
        ("1d", 86400),
        ("1w", 604800),
        ("0", 0),
        ("0s", 0),
    ],
)
def test_it_reads_seconds_and_units(raw: str, seconds: int) -> None:
    assert duration(raw) == seconds


@pytest.mark.parametrize("raw", ["", "1x", "-5m", "1.5h", "h", "1h30m"])
def test_it_refuses_what_is_not_a_duration(raw: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        duration(raw)


def test_canaries_create_takes_durations() -> None:
    args = build_parser().parse_args(
        [
            "canaries",
            "create",
            "nightly",
            "--interval",
            "1h",
            "--grace",
            "10m",
            "--max-runtime",
            "90s",
        ]
    )
    assert (args.interval, args.grace, args.max_runtime) == (3600, 600, 90)
    assert build_parser().parse_args(["canaries", "create", "n", "--interval", "86400"]).grace == 0
