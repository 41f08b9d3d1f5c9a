"""CatchUp: refusals share one look at the log's end; a look never outlives its timeout.

The consumer here is a stand-in for aiokafka's, holding a log end and a follower position
the test moves by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from runtime.catch_up import CatchUp

TP = TopicPartition("coalmine.keys", 0)


class Follower:
    def __init__(self) -> None:
        self.end = 0
        self.at = 0
        self.asked = 0
        self.fail = False
        self.gate: asyncio.Event | None = None  # holds ListOffsets until set

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise KafkaConnectionError("broker away")
        return dict.fromkeys(partitions, self.end)

    async def position(self, tp: TopicPartition) -> int:
        return self.at


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 10))


def test_it_returns_once_the_follower_has_passed_the_end_it_saw() -> None:
    async def scenario() -> None:
        follower = Follower()
        follower.end = 5
        waiting = asyncio.create_task(CatchUp(follower, follower, timeout_s=5).wait())  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        assert not waiting.done()
        follower.end = 9  # written after the look began: not waited for
        follower.at = 5
        assert await waiting is True

    run(scenario())


def test_refusals_waiting_together_share_one_look() -> None:
    async def scenario() -> None:
        follower = Follower()
        catch_up = CatchUp(follower, follower, timeout_s=5)  # type: ignore[arg-type]
        assert all(await asyncio.gather(*(catch_up.wait() for _ in range(50))))
        assert follower.asked == 1

    run(scenario())


def test_a_refusal_arriving_during_a_look_gets_a_look_of_its_own_after_it() -> None:
    async def scenario() -> None:
        follower = Follower()
        follower.gate = asyncio.Event()
        catch_up = CatchUp(follower, follower, timeout_s=5)  # type: ignore[arg-type]
        first = asyncio.create_task(catch_up.wait())
        await asyncio.sleep(0.01)  # the first look has asked for the end
        later = [asyncio.create_task(catch_up.wait()) for _ in range(10)]
        await asyncio.sleep(0.01)
        assert follower.asked == 1
        follower.gate.set()
        assert await first is True
        assert all(await asyncio.gather(*later))
        assert follower.asked == 2  # one more look, shared by the ten

    run(scenario())


def test_a_follower_that_never_gets_there_gives_up_after_the_timeout() -> None:
    async def scenario() -> None:
        follower = Follower()
        follower.end = 1
        catch_up = CatchUp(follower, follower, timeout_s=0.1)  # type: ignore[arg-type]
        assert await catch_up.wait() is False
        follower.at = 1  # the next look is not held up by the stuck one
        assert await catch_up.wait() is True

    run(scenario())


def test_a_broker_error_is_a_no_and_the_next_look_tries_again() -> None:
    async def scenario() -> None:
        follower = Follower()
        follower.fail = True
        catch_up = CatchUp(follower, follower, timeout_s=1)  # type: ignore[arg-type]
        assert await catch_up.wait() is False
        follower.fail = False
        assert await catch_up.wait() is True
        assert follower.asked == 2

    run(scenario())


def test_records_written_here_are_not_waited_for_but_others_are() -> None:
    async def scenario() -> None:
        follower = Follower()
        follower.at, follower.end = 3, 5
        catch_up = CatchUp(follower, follower, timeout_s=0.1)  # type: ignore[arg-type]
        catch_up.applied_here(4)
        assert await catch_up.wait() is False  # offset 3 came from another process
        catch_up.applied_here(3)
        assert await catch_up.wait() is True
        follower.at, follower.end = 5, 7  # read back; another process wrote 5, this one 6
        catch_up.applied_here(6)
        assert await catch_up.wait() is False

    run(scenario())


def test_offsets_written_here_are_forgotten_when_the_log_restarts_below_them() -> None:
    async def scenario() -> None:
        follower = Follower()
        catch_up = CatchUp(follower, follower, timeout_s=0.1)  # type: ignore[arg-type]
        for offset in range(100, 102):
            catch_up.applied_here(offset)
        follower.at, follower.end = 0, 2  # a new log, written by others
        assert await catch_up.wait() is False
        follower.at, follower.end = 99, 102  # the new log reaches those offsets: not ours
        catch_up.applied_here(99)
        assert await catch_up.wait() is False  # 100 and 101 were forgotten

    run(scenario())
