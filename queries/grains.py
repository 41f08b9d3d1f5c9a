"""Which rollup grain answers which part of a time range: e.g. whole days from the day rows,
the hours at either end from the hour rows, then minutes, and the partial minutes at the very
ends from raw events. Summing those parts is exact, so a query over the rollups gives the same
answer as one over raw events for any [start, end). Pure functions over epoch milliseconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from schemas.rollups import GRAINS as FINEST_FIRST

# Coarsest first: a range takes the widest grain that fits, then the finer ones at its ends.
GRAINS: tuple[tuple[str, int], ...] = tuple(reversed(FINEST_FIRST))
GRAIN_SECONDS = dict(GRAINS)
EVENTS = "events"
# Each source covers at most two disjoint ranges of one [start, end): see cover().
RANGES_PER_SOURCE = 2

Range = tuple[int, int]


def grain_for_step(step_s: int) -> str | None:
    """The largest grain dividing a bucket width, so every bucket (aligned to multiples of the
    width since the epoch) is a whole number of grain buckets; None when no grain divides it
    (e.g. 30 s or 90 s), and the series must read raw events."""
    for grain, seconds in GRAINS:
        if step_s % seconds == 0:
            return grain
    return None


def finer_grains(coarsest: str) -> tuple[str, ...]:
    """`coarsest` and every finer grain, coarsest first."""
    names = [name for name, _ in GRAINS]
    return tuple(names[names.index(coarsest) :])


def cover(start_ms: int, end_ms: int, grains: Sequence[str]) -> dict[str, list[Range]]:
    """Split [start_ms, end_ms) into ranges per source: each of `grains` (coarsest first, each
    dividing the one before) gets whole buckets of its own (epoch multiples of the grain),
    what none of them covers goes to "events".

    A range loses its aligned middle to the coarser grain and passes at most its two
    unaligned ends down; an end piece is aligned on its inner side, so it passes at most one
    piece further. Hence at most RANGES_PER_SOURCE ranges per source.
    """
    sizes = [GRAIN_SECONDS[grain] * 1000 for grain in grains]
    assert all(coarser % finer == 0 for coarser, finer in itertools.pairwise(sizes)), grains
    plan: dict[str, list[Range]] = {grain: [] for grain in grains}
    pending = [(start_ms, end_ms)] if start_ms < end_ms else []
    for grain, size in zip(grains, sizes):
        rest: list[Range] = []
        for lo, hi in pending:
            inner_lo, inner_hi = -(-lo // size) * size, hi // size * size
            if inner_lo >= inner_hi:
                rest.append((lo, hi))
                continue
            plan[grain].append((inner_lo, inner_hi))
            rest += [piece for piece in ((lo, inner_lo), (inner_hi, hi)) if piece[0] < piece[1]]
        pending = rest
    plan[EVENTS] = pending
    return plan


def padded(ranges: list[Range]) -> list[Range]:
    """Exactly RANGES_PER_SOURCE ranges, empty ones added: the SQL has a fixed shape."""
    assert len(ranges) <= RANGES_PER_SOURCE, ranges
    return ranges + [(0, 0)] * (RANGES_PER_SOURCE - len(ranges))


def source_condition(source: str, column: str, prefix: str = "") -> str:
    """`column` within one of the source's ranges, as bound parameters named after the source
    (see source_parameters): rollup buckets in epoch seconds, raw `ts` in milliseconds. The
    prefix tells apart the covers of several ranges in one query."""
    # Rollup buckets are DateTime (seconds), raw `ts` is DateTime64(3).
    to_time = (
        "fromUnixTimestamp64Milli({%s:Int64})"
        if source == EVENTS
        else "toDateTime({%s:UInt32}, 'UTC')"
    )
    ranges = []
    for i in range(RANGES_PER_SOURCE):
        lo, hi = to_time % f"{prefix}{source}_lo{i}", to_time % f"{prefix}{source}_hi{i}"
        ranges.append(f"({column} >= {lo} AND {column} < {hi})")
    return "(" + " OR ".join(ranges) + ")"


def source_parameters(plan: dict[str, list[Range]], prefix: str = "") -> dict[str, int]:
    """The bound values of source_condition for every source of a cover()."""
    parameters = {}
    for source, ranges in plan.items():
        unit = 1 if source == EVENTS else 1000
        for i, (lo, hi) in enumerate(padded(ranges)):
            parameters[f"{prefix}{source}_lo{i}"] = lo // unit
            parameters[f"{prefix}{source}_hi{i}"] = hi // unit
    return parameters
