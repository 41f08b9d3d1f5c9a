"""Shared test helpers: waiting for a condition with a deadline (never sleep-and-hope)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")
        time.sleep(every_s)
