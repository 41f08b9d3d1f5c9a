"""ClickHouse access: one client factory for chDB (embedded) and a server (production), and the
migration runner for schemas/migrations/NNNN_*.sql."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from runtime.settings import Settings
from schemas.errors import ClickHouseUnavailable

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "schemas" / "migrations"


# chDB's engine options (its clickhouse-local start arguments, server settings). Its memory
# worker re-reads the allocator's statistics every 50 ms by default: 20 wake-ups a second, a
# quarter of the idle store's CPU (docs/benchmarks.md, "Idle cost"); once a second is plenty
# for one process's memory accounting. Each MergeTree table also looks for merges and old
# parts to remove, after its last work every 0.1 s growing by 1.1x (plus up to 1 s): a
# minute after a load its twenty-odd tables still woke the store tens of times a second.
# An insert asks for a merge at once whatever these say, so they only pace the idle looks:
# from 1 s, doubling (to the 600 s cap, as before; parts merged for their age still are).
# Measured with 20 tables just written: 111 -> 61 wake-ups a second in the first 20 s,
# 33 -> 20 a minute later.
CHDB_OPTIONS = {
    "memory_worker_period_ms": 1000,
    "background_processing_pool_thread_sleep_seconds_if_nothing_to_do": 1,
    "background_processing_pool_task_sleep_seconds_when_no_work_multiplier": 2,
}


def connect(settings: Settings) -> Client:
    """A client for the configured ClickHouse, retried until settings.startup_timeout_s."""
    deadline = time.monotonic() + settings.startup_timeout_s
    if settings.embedded_clickhouse:
        (settings.data_path / "clickhouse").mkdir(parents=True, exist_ok=True)
    # A server session refuses concurrent queries, and the API queries from several threads:
    # no session id (chDB has no sessions to speak of and warns about the option).
    options: dict[str, object] = (
        {"chdb_options": CHDB_OPTIONS}
        if settings.embedded_clickhouse
        else {"autogenerate_session_id": False}
    )
    while True:
        try:
            client = clickhouse_connect.get_client(dsn=settings.clickhouse_dsn, **options)
            client.command("SELECT 1")
            return client
        except Exception as exc:  # the driver raises several unrelated types
            if time.monotonic() > deadline:
                raise ClickHouseUnavailable(f"ClickHouse unreachable: {exc}") from exc
            log.info("waiting for ClickHouse: %s", exc)
            time.sleep(0.5)


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration, in order."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        found.append((int(path.name[:4]), path.stem, path.read_text()))
    return found


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def migrate(client: Client) -> list[str]:
    """Apply the migrations not yet applied; return their names. Safe to run again."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version UInt32, name String, applied_at DateTime DEFAULT now())"
        " ENGINE = MergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    applied = []
    for version, name, sql in migration_files():
        if version in done:
            continue
        for statement in _statements(sql):
            client.command(statement)
        client.insert("schema_migrations", [[version, name]], column_names=["version", "name"])
        applied.append(name)
        log.info("applied migration %s", name)
    return applied


def query_dicts(client: Client, sql: str, parameters: dict[str, Any] | None = None) -> list[dict]:
    result = client.query(sql, parameters=parameters or {})
    names = result.column_names
    return [dict(zip(names, row)) for row in result.result_rows]
