"""Retrying what must not be skipped: an insert whose offsets wait uncommitted, a commit of
rows already stored, a record the next step depends on. Giving up would lose or double data;
waiting only delays it, so these are retried until they succeed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

FIRST_DELAY_S = 0.2
MAX_DELAY_S = 5.0


async def until_done(attempt: Callable[[], Awaitable[T]], what: str, log: logging.Logger) -> T:
    """Await `attempt()` until it returns; after each failure, warn and wait, doubling the
    wait from 0.2 s up to 5 s."""
    delay = FIRST_DELAY_S
    while True:
        try:
            return await attempt()
        except Exception as exc:  # noqa: BLE001 - drivers raise unrelated types; all are retried
            log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
