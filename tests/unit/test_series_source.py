"""queries.series.choose_source: the rollups when a grain divides the interval, unless the
client asks for raw events."""

from __future__ import annotations

import pytest

from queries.params import QueryError
from queries.series import choose_source


def test_it_uses_the_rollups_when_a_grain_divides_the_interval() -> None:
    assert choose_source("", 3600) == ("rollups", "hour")
    assert choose_source("", 7 * 86_400) == ("rollups", "day")
    assert choose_source("rollups", 900) == ("rollups", "minute")


def test_it_reads_raw_events_for_other_intervals() -> None:
    assert choose_source("", 90) == ("events", None)


def test_it_reads_raw_events_when_asked() -> None:
    assert choose_source("events", 3600) == ("events", None)


def test_it_refuses_rollups_for_an_interval_no_grain_divides() -> None:
    with pytest.raises(QueryError, match="multiple of 60"):
        choose_source("rollups", 30)


def test_it_refuses_an_unknown_source() -> None:
    with pytest.raises(QueryError, match="`source` must be rollups or events"):
        choose_source("cache", 3600)
