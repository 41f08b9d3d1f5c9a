"""processors.sinks.rollup_sink: a delta -> rows of the `rollups` table."""

from __future__ import annotations

from processors.sinks.rollup_sink import ROLLUP_COLUMNS, rollup_rows
from schemas.rollups import RollupDelta, RollupRow


def test_it_maps_each_row_to_the_table_columns() -> None:
    row = RollupRow("hour", "a", "error", "k", 3_600, 3, 2, 5.5, 1.5, 4.0, 3_650.0, "boom")
    delta = RollupDelta(
        1, 7, 9, "f" * 32, [row, RollupRow("day", "a", "event", "k", 0, 1, 0, 0.0, None, None)]
    )
    rows = rollup_rows(delta)
    assert dict(zip(ROLLUP_COLUMNS, rows[0])) == {
        "grain": "hour",
        "name": "a",
        "type": "error",
        "key_id": "k",
        "bucket": 3_600,
        "count": 3,
        "value_count": 2,
        "value_sum": 5.5,
        "value_min": 1.5,
        "value_max": 4.0,
        "last_error": (3_650.0, "boom"),
    }
    assert rows[1][-3:] == [None, None, (0.0, "")]


def test_its_columns_are_the_tables() -> None:
    from runtime.clickhouse_client import migration_files

    (sql,) = [sql for _, name, sql in migration_files() if name.endswith("_rollups")]
    sql = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    body = sql[sql.index("(") + 1 : sql.index("ENGINE")]
    declared = [
        line.split()[0] for line in body.splitlines() if line.strip() and line.strip()[0].isalpha()
    ]
    added = [
        sql.split("ADD COLUMN IF NOT EXISTS ")[1].split()[0]
        for _, name, sql in migration_files()
        if "ALTER TABLE rollups" in sql
    ]
    assert tuple(declared + added) == ROLLUP_COLUMNS
