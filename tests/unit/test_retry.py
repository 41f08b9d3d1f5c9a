"""until_done: what must not be skipped is retried until it succeeds, each failure logged."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runtime.retry import until_done


def test_it_retries_until_the_attempt_succeeds_and_returns_its_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = [ConnectionError("broker away"), TimeoutError("slow")]

    async def attempt() -> str:
        if failures:
            raise failures.pop(0)
        return "stored"

    with caplog.at_level(logging.WARNING):
        result = asyncio.run(until_done(attempt, "storing rows", logging.getLogger("test")))

    assert result == "stored"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert warnings[0].startswith("storing rows failed (broker away); retrying in 0.2s")
    assert warnings[1].startswith("storing rows failed (slow); retrying in 0.4s")


def test_cancellation_is_not_retried() -> None:
    async def attempt() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(until_done(attempt, "x", logging.getLogger("test")))
