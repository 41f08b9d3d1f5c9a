"""Shared test helpers: waiting for a condition with a deadline (never sleep-and-hope), and
an in-process chDB for the tests that seed tables directly."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout_s: float, what: str, every_s: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy; fail the test after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            value = condition()
        except Exception as exc:  # a server still starting refuses connections
            value, last = None, exc  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s}s waiting for {what} (last: {last!r})"
            )
        time.sleep(every_s)


def fresh_clickhouse(data_dir: Path) -> Client:
    """chDB on an empty data directory with every migration applied. chDB allows one data
    directory per process at a time: close the client before opening another."""
    from runtime.clickhouse_client import connect, migrate
    from runtime.settings import load_settings

    client = connect(load_settings({}, data_dir=str(data_dir)))
    migrate(client)
    return client


def set_clock(path: Path, at: float) -> None:
    """Move the COALMINE_CLOCK_FILE clock: written aside and renamed into place, so a reader
    never meets the file empty (it would read the system clock then)."""
    aside = path.with_name(path.name + ".new")
    aside.write_text(str(at))
    aside.replace(path)
