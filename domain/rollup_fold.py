"""The rollup fold: events -> per (grain, name, type, key, window) the count of events, and the
count, sum, min and max of their `value`. Pure: no I/O, no clock.

An event's window follows its own time (`ts`, or its batch's `received_at` when absent), so
a late event adds to the window it belongs to, however late it is: rows of deltas add up.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from schemas.rollups import GRAINS, RollupBatch, RollupDelta, RollupRow

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_SECOND = dt.timedelta(seconds=1)
MINUTE = 60
assert GRAINS[0] == ("minute", MINUTE)  # the fold keeps minutes and derives the rest

# A row's encoded size without its name and key id, rounded up: grain, type, bucket, two
# counts, three floats of up to 24 characters, punctuation.
ROW_BYTES = 160
# Deltas are cut at this estimated size (checked after each record, which adds at most
# 100 events x 3 rows of ~1.4 KB): Faust's producer refuses requests over 1 MB, and so do
# Kafka brokers by default.
MAX_DELTA_BYTES = 256 * 1024

_json = msgspec.json.Encoder()
Cell = list  # [count, value_count, value_sum, value_min, value_max, last_at, last_message]
CellKey = tuple[str, str, str, int]  # name, type, key_id, window start (epoch seconds)


def epoch_seconds(moment: dt.datetime) -> int:
    """Whole seconds since the epoch, rounded down, in exact integer arithmetic (a float
    could round 59.9999999 up into the next minute). ClickHouse keeps `ts` to the
    millisecond, truncated, which never crosses a second: raw rows fall in the same window."""
    return (moment - EPOCH) // ONE_SECOND


def _merge(cells: dict[CellKey, Cell], key: CellKey, cell: Cell) -> None:
    into = cells.get(key)
    if into is None:
        cells[key] = list(cell)
        return
    into[0] += cell[0]
    into[1] += cell[1]
    into[2] += cell[2]
    if cell[3] is not None and (into[3] is None or cell[3] < into[3]):
        into[3] = cell[3]
    if cell[4] is not None and (into[4] is None or cell[4] > into[4]):
        into[4] = cell[4]
    into[5], into[6] = max((into[5], into[6]), (cell[5], cell[6]))


class RollupFold:
    """Events folded into minute windows; hours and days are derived from the minutes when
    drained (counts and sums add, min and max compose), so each event costs one dict update."""

    def __init__(self) -> None:
        self._minutes: dict[CellKey, Cell] = {}
        self.estimated_bytes = 0  # an upper bound of the drained rows' encoded size

    def __len__(self) -> int:
        return len(self._minutes)

    def add(
        self,
        type_: str,
        name: str,
        value: float | None,
        at_s: int,
        key_id: str,
        message: str | None = None,
    ) -> None:
        key = (name, type_, key_id, at_s - at_s % MINUTE)
        cell = self._minutes.get(key)
        if cell is None:
            cell = self._minutes[key] = [0, 0, 0.0, None, None, 0.0, ""]
            size = ROW_BYTES + len(_json.encode(name)) + len(_json.encode(key_id))
            self.estimated_bytes += len(GRAINS) * size  # its hour and day may be new too
        cell[0] += 1
        if value is not None:
            cell[1] += 1
            cell[2] += value
            if cell[3] is None or value < cell[3]:
                cell[3] = value
            if cell[4] is None or value > cell[4]:
                cell[4] = value
        if message is not None and (at_s, message) >= (cell[5], cell[6]):
            self.estimated_bytes += max(0, len(message) - len(cell[6])) * 2  # escapes
            cell[5], cell[6] = float(at_s), message

    def add_batch(self, batch: RollupBatch) -> None:
        received_s: int | None = None
        for event in batch.events:
            if event.ts is not None:
                at_s = epoch_seconds(event.ts)
            else:
                if received_s is None:  # the very datetime the events sink stores as `ts`
                    received = dt.datetime.fromtimestamp(batch.received_at, dt.UTC)
                    received_s = epoch_seconds(received)
                at_s = received_s
            message = event.message if event.type == "error" else None
            self.add(event.type, event.name, event.value, at_s, batch.key_id, message)

    def drain(self) -> list[RollupRow]:
        """Every grain's rows of what was added since the last drain; empties the fold."""
        coarser: list[tuple[str, int, dict[CellKey, Cell]]] = [(g, w, {}) for g, w in GRAINS[1:]]
        rows = []
        for (name, type_, key_id, start), cell in self._minutes.items():
            row = RollupRow("minute", name, type_, key_id, start, *cell)  # type: ignore[arg-type]
            rows.append(row)
            for _, width, cells in coarser:
                _merge(cells, (name, type_, key_id, start - start % width), cell)
        for grain, _, cells in coarser:
            rows.extend(
                RollupRow(grain, name, type_, key_id, start, *cell)  # type: ignore[arg-type]
                for (name, type_, key_id, start), cell in cells.items()
            )
        self._minutes = {}
        self.estimated_bytes = 0
        return rows


class DeltaBuilder:
    """Folds consecutive records of one events partition into deltas, each covering an offset
    range and cut before it grows past MAX_DELTA_BYTES."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self._fold = RollupFold()
        self._first = self._last = -1
        self._last_batch_id = ""

    def add(self, offset: int, batch: RollupBatch | None) -> None:
        """Add the record at `offset` (records in offset order). None stands for a record that
        could not be read: inside the delta's range, adding nothing."""
        if self._first < 0:
            self._first = offset
        self._last = offset
        if batch is not None:
            self._fold.add_batch(batch)
            self._last_batch_id = batch.batch_id

    @property
    def full(self) -> bool:
        return self._fold.estimated_bytes >= MAX_DELTA_BYTES

    def cut(self) -> RollupDelta | None:
        """The delta of the records added since the last cut; None when they add nothing."""
        rows = self._fold.drain()
        delta = (
            RollupDelta(self.partition, self._first, self._last, self._last_batch_id, rows)
            if rows
            else None
        )
        self._first = self._last = -1
        self._last_batch_id = ""
        return delta


class FlushDeltas:
    """The deltas of one flush: records of several partitions in, deltas out."""

    def __init__(self) -> None:
        self._builders: dict[int, DeltaBuilder] = {}
        self._cut: list[RollupDelta] = []

    def add(self, partition: int, offset: int, batch: RollupBatch | None) -> None:
        builder = self._builders.get(partition)
        if builder is None:
            builder = self._builders[partition] = DeltaBuilder(partition)
        builder.add(offset, batch)
        if builder.full:
            self._append(builder.cut())

    def deltas(self) -> list[RollupDelta]:
        """Every delta, in offset order per partition; the flush is empty afterwards."""
        for builder in self._builders.values():
            self._append(builder.cut())
        cut, self._cut = self._cut, []
        return cut

    def _append(self, delta: RollupDelta | None) -> None:
        if delta is not None:
            self._cut.append(delta)
