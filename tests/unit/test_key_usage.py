"""processors.agents.key_usage.UsageFold: the latest use per key, published once per new use."""

from __future__ import annotations

from processors.agents.key_usage import UsageFold
from schemas.records import KeyUsed


def test_it_keeps_the_latest_use_of_a_key() -> None:
    fold = UsageFold()

    fold.note("key_1", 20.0)
    fold.note("key_1", 10.0)
    fold.note("key_1", 15.0)

    assert fold.latest == {"key_1": 20.0}


def test_it_drains_nothing_before_any_use() -> None:
    assert UsageFold().drain() == []


def test_it_drains_each_used_key_once_with_its_latest_use() -> None:
    fold = UsageFold()
    fold.note("key_1", 10.0)
    fold.note("key_2", 5.0)
    fold.note("key_1", 12.0)

    drained = fold.drain()

    assert sorted(drained, key=lambda r: r.id) == [KeyUsed("key_1", 12.0), KeyUsed("key_2", 5.0)]


def test_it_drains_nothing_more_until_a_key_is_used_again() -> None:
    fold = UsageFold()
    fold.note("key_1", 10.0)
    fold.drain()

    assert fold.drain() == []


def test_it_drains_a_key_again_after_a_later_use() -> None:
    fold = UsageFold()
    fold.note("key_1", 10.0)
    fold.note("key_2", 10.0)
    fold.drain()

    fold.note("key_1", 11.0)

    assert fold.drain() == [KeyUsed("key_1", 11.0)]


def test_it_ignores_a_use_older_than_the_one_published() -> None:
    fold = UsageFold()
    fold.note("key_1", 10.0)
    fold.drain()

    fold.note("key_1", 9.0)
    fold.note("key_1", 10.0)

    assert fold.drain() == []
