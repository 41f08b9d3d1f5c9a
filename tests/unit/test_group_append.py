"""GroupAppend: check-ins that arrive together share one log record, and its fate."""

from __future__ import annotations

import asyncio

import pytest

from ingest_api.group_append import AppendCancelled, GroupAppend


class Log:
    """An append function that records each record's items; it waits on `gate` if set."""

    def __init__(self) -> None:
        self.records: list[tuple[int, list[str]]] = []
        self.gate: asyncio.Event | None = None
        self.fail_next: Exception | None = None

    async def append(self, partition: int, items: list[str]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.records.append((partition, list(items)))


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coroutine, 10))


def test_an_idle_item_is_appended_alone_and_at_once() -> None:
    async def scenario() -> list[tuple[int, list[str]]]:
        log = Log()
        appender = GroupAppend(log.append, max_items=10, spacing_s=0.0)
        await appender.add(3, "a")
        return log.records

    assert run(scenario()) == [(3, ["a"])]


def test_items_arriving_while_an_append_is_in_flight_share_the_next_record() -> None:
    async def scenario() -> list[tuple[int, list[str]]]:
        log = Log()
        log.gate = asyncio.Event()
        appender = GroupAppend(log.append, max_items=10, spacing_s=0.0)
        first = asyncio.create_task(appender.add(0, "a"))
        await asyncio.sleep(0)  # "a" is in flight, held at the gate
        rest = [asyncio.create_task(appender.add(0, x)) for x in "bcd"]
        other = asyncio.create_task(appender.add(1, "z"))  # another partition: its own record
        await asyncio.sleep(0)
        log.gate.set()
        await asyncio.gather(first, *rest, other)
        return sorted(log.records)

    assert run(scenario()) == [(0, ["a"]), (0, ["b", "c", "d"]), (1, ["z"])]


def test_items_arriving_within_the_spacing_share_the_next_record() -> None:
    async def scenario() -> list[tuple[int, list[str]]]:
        log = Log()
        appender = GroupAppend(log.append, max_items=10, spacing_s=0.2)
        await appender.add(0, "a")
        await asyncio.gather(appender.add(0, "b"), appender.add(0, "c"))
        return log.records

    assert run(scenario()) == [(0, ["a"]), (0, ["b", "c"])]


def test_a_full_group_starts_the_next_record() -> None:
    async def scenario() -> list[tuple[int, list[str]]]:
        log = Log()
        log.gate = asyncio.Event()
        appender = GroupAppend(log.append, max_items=2, spacing_s=0.0)
        tasks = [asyncio.create_task(appender.add(0, x)) for x in "abcde"]
        await asyncio.sleep(0)
        log.gate.set()
        await asyncio.gather(*tasks)
        return log.records

    assert run(scenario()) == [(0, ["a", "b"]), (0, ["c", "d"]), (0, ["e"])]


def test_a_failed_append_fails_its_whole_group_and_only_it() -> None:
    async def scenario() -> tuple[list[object], list[tuple[int, list[str]]]]:
        log = Log()
        log.gate = asyncio.Event()
        log.fail_next = TimeoutError("log unavailable")
        appender = GroupAppend(log.append, max_items=10, spacing_s=0.0)
        doomed = [asyncio.create_task(appender.add(0, x)) for x in "ab"]
        await asyncio.sleep(0)
        log.gate.set()
        outcomes = await asyncio.gather(*doomed, return_exceptions=True)
        await appender.add(0, "c")  # the next group is not affected
        return outcomes, log.records

    outcomes, records = run(scenario())
    assert [type(o) for o in outcomes] == [TimeoutError, TimeoutError]
    assert records == [(0, ["c"])]


def test_a_caller_that_goes_away_does_not_cancel_the_append_of_the_others() -> None:
    async def scenario() -> list[tuple[int, list[str]]]:
        log = Log()
        log.gate = asyncio.Event()
        appender = GroupAppend(log.append, max_items=10, spacing_s=0.0)
        leaving = asyncio.create_task(appender.add(0, "a"))
        staying = asyncio.create_task(appender.add(0, "b"))
        await asyncio.sleep(0)
        leaving.cancel()
        await asyncio.sleep(0)
        log.gate.set()
        await staying
        return log.records

    assert run(scenario()) == [(0, ["a", "b"])]


def test_closing_fails_what_was_not_appended() -> None:
    async def scenario() -> None:
        log = Log()
        log.gate = asyncio.Event()  # never opened: the append hangs until closed
        appender = GroupAppend(log.append, max_items=10, spacing_s=0.0)
        pending = asyncio.create_task(appender.add(0, "a"))
        await asyncio.sleep(0)
        await appender.close()
        await pending

    with pytest.raises(AppendCancelled):
        run(scenario())
