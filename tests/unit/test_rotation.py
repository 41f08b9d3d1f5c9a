"""The pure parts of the log's rotation: topic names by generation, positions across
generations, what is carried over, and the launcher's state file."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.structs import ConsumerRecord

from coalmine.rotation import (
    alerts_to_carry,
    changelog_in,
    compacted,
    control_identity,
    generation_topics,
    key_identity,
    latest_to_carry,
)
from runtime import generations
from schemas.alerts import Digest, ErrorAlert
from schemas.canaries import CanaryDefined, CanaryDeleted
from schemas.records import KeyCreated, KeyRevoked, record_encoder
from schemas.topics import (
    Topic,
    carried,
    generation_of,
    name_in,
    position,
    processors_group,
)


def test_generation_0_keeps_the_registry_names_and_later_ones_are_apart() -> None:
    assert name_in("coalmine.events", 0) == "coalmine.events"
    assert name_in("coalmine.dead-letters", 12) == "coalmine.g12.dead-letters"
    assert Topic.EVENTS.name_in(3) == "coalmine.g3.events"
    for generation in (0, 1, 7, 123):
        for topic in Topic:
            assert generation_of(topic.name_in(generation)) == generation
    # A Faust changelog of generation 0 never starts like one of another generation.
    assert processors_group(0) == "coalmine-processors"
    assert not processors_group(1).startswith(processors_group(0) + "-")


def test_positions_grow_across_generations() -> None:
    assert position(5, 0) == 5
    assert position(0, 1) > position(10**9, 0)
    assert position(3, 2) > position(900, 1)


def test_a_topic_of_a_generation_and_its_changelogs_are_deleted_and_nothing_else() -> None:
    existing = [
        *(t.name_in(1) for t in Topic),
        *(t.name_in(2) for t in Topic),
        "coalmine-g1-processors-heartbeats-changelog",
        "coalmine-g2-processors-heartbeats-changelog",
        "coalmine-processors-heartbeats-changelog",
        "someone-elses-topic",
    ]
    doomed = generation_topics(existing, 1)
    assert set(doomed) == {t.name_in(1) for t in Topic} | {
        "coalmine-g1-processors-heartbeats-changelog"
    }
    assert "coalmine-processors-heartbeats-changelog" in generation_topics(existing, 0)
    assert not [n for n in generation_topics(existing, 0) if "g1" in n or "g2" in n]


def test_changelogs_move_to_the_new_workers_names() -> None:
    assert changelog_in("coalmine-processors-heartbeats-changelog", 0, 1) == (
        "coalmine-g1-processors-heartbeats-changelog"
    )
    assert changelog_in("coalmine-g4-processors-ratelimit-levels-changelog", 4, 5) == (
        "coalmine-g5-processors-ratelimit-levels-changelog"
    )
    assert changelog_in("coalmine-processors-__assignor-__leader", 0, 1) is None
    assert changelog_in("coalmine-g1-processors-heartbeats-changelog", 0, 1) is None


def test_the_last_record_of_each_id_is_carried_unless_the_new_generation_has_one() -> None:
    old = [(0, "a"), (1, "b"), (2, "a"), (3, None), (4, "c"), (5, "b")]
    assert latest_to_carry(old, present=set()) == [2, 4, 5]
    assert latest_to_carry(old, present={"b"}) == [2, 4]


def test_a_key_keeps_its_creation_and_its_revocation_and_a_canary_its_deletion() -> None:
    created = record_encoder.encode(KeyCreated("key_1", "k", "h", 1.0))
    revoked = record_encoder.encode(KeyRevoked("key_1", 2.0))
    identities = [(0, key_identity(created)), (1, key_identity(revoked))]
    assert latest_to_carry(identities, present=set()) == [0, 1]
    # A limits change after the switch is newer than any before it: only that one stands.
    assert latest_to_carry(identities, present={key_identity(revoked)}) == [0]
    definition = CanaryDefined("can_1", "c", "h", 60, 0, [], 1.0, 1.0)
    deleted = CanaryDeleted("can_1", 3.0)
    ids = [control_identity(record_encoder.encode(r)) for r in (definition, deleted)]
    assert ids == ["can_1", "can_1"]
    assert latest_to_carry(list(enumerate(ids)), present=set()) == [1]


def _error(at: float, name: str = "boom", window: int = 600) -> bytes:
    return record_encoder.encode(
        ErrorAlert(f"alert:{name}{at}", "key_1", "error", name, "m", at, "e", window, [])
    )


def test_open_quiet_windows_and_the_last_digest_of_each_plan_are_carried() -> None:
    def digest(plan: str, end: float) -> bytes:
        return record_encoder.encode(
            Digest(f"digest:{plan}:{end}", plan, [], "daily", "UTC", end - 86400, end, [], [])
        )

    old = [
        (0, _error(100.0, "closed", window=60)),  # window ended at 160
        (1, _error(500.0)),
        (2, _error(900.0)),  # the same window key, later: this one
        (3, _error(950.0, "other")),
        (4, digest("default", 86400)),
        (5, digest("default", 2 * 86400)),
        (6, digest("route_1", 86400)),
        (7, b"not json"),
    ]
    assert alerts_to_carry(old, now=1000.0) == [2, 3, 5, 6]


def _record(offset: int, key: bytes, value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord("t", 0, offset, 0, 0, key, value, None, 0, 0, [])


def test_a_changelog_is_compacted_as_kafka_would() -> None:
    records = [
        _record(0, b"a", b"1"),
        _record(1, b"b", b"1"),
        _record(2, b"a", b"2"),
        _record(3, b"b", None),
    ]
    assert [(r.key, r.value) for r in compacted(records)] == [(b"a", b"2")]


def test_carried_records_are_told_by_their_header() -> None:
    assert carried([("coalmine-carried", b"1")])
    assert carried({"coalmine-carried": b"1"})
    assert not carried([("source", b"x")])
    assert not carried(None)


def test_the_state_file_round_trips_and_is_generation_0_when_absent(tmp_path: Path) -> None:
    path = str(tmp_path / "log-generation")
    assert generations.read(path) == generations.Generations()
    assert generations.read("") == generations.Generations()
    state = generations.Generations(current=3, retiring=2, worker=2)
    generations.write(path, state)
    assert generations.read(path) == state
    assert state.live == [2, 3] and state.stamp == "3,2"
    assert generations.Generations(current=3, worker=3).stamp == "3,-"
    generations.acknowledge(path, "api", state)
    import os

    assert generations.acknowledged(path, "api", os.getpid()) == "3,2"
    generations.clear_acknowledgements(path)
    assert generations.acknowledged(path, "api", os.getpid()) is None
    assert oct(Path(path).stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("name", ["coalmine.events", "coalmine.gx.events", "coalmine.g.events"])
def test_names_that_are_not_a_later_generation_are_generation_0(name: str) -> None:
    assert generation_of(name) == 0


def test_a_switch_waits_for_the_appends_still_on_their_way_to_the_old_generation() -> None:
    """An append sent before the switch may wait for metadata or buffer space before the
    producer holds it: the API acknowledges the switch only once none is left (soak: one
    batch of 100 events acknowledged into a generation already drained, without this)."""
    import asyncio
    from collections import Counter
    from types import SimpleNamespace

    from ingest_api.services import Services

    async def scenario() -> None:
        api = SimpleNamespace(appending=Counter({1: 1, 2: 3}))
        waiting = asyncio.create_task(Services.settled(api, [2]))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        assert not waiting.done()
        api.appending[1] -= 1  # the old generation's last append acknowledged
        await asyncio.wait_for(waiting, 1)

    asyncio.run(scenario())
