"""The README's Quickstart is right: its `coalmine` commands parse, the default rate limit it
states is the one keys get, and the fast test subset it names exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from coalmine.cli import _join_time_flags, build_parser
from schemas.limits import DEFAULT_BURST, DEFAULT_RATE_PER_MINUTE

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
QUICKSTART = README[
    README.index("## Quickstart") : README.index("\n## ", README.index("## Quickstart") + 1)
]


def test_every_coalmine_command_of_the_quickstart_parses() -> None:
    commands = re.findall(r"^\.venv/bin/coalmine (.+?)(?:\s+#.*)?$", QUICKSTART, re.MULTILINE)
    assert len(commands) >= 8
    for command in commands:
        argv = shlex.split(command.replace("…", "x").replace("<", "").replace(">", ""))
        build_parser().parse_args(_join_time_flags(argv))  # exits (SystemExit) on a bad one


def test_it_says_coalmine_up_holds_the_terminal() -> None:
    assert "holds the terminal" in QUICKSTART and "second terminal" in QUICKSTART


def test_the_default_rate_limit_it_states_is_the_real_one() -> None:
    assert f"{DEFAULT_RATE_PER_MINUTE} events per minute by default" in QUICKSTART
    assert f"a bucket of {DEFAULT_BURST} events" in QUICKSTART
    assert "coalmine keys limit" in QUICKSTART and "--rate" in QUICKSTART


def test_the_fast_subset_it_names_exists() -> None:
    assert "the fast subset is `tests/unit`" in QUICKSTART
    assert any((ROOT / "tests" / "unit").glob("test_*.py"))
