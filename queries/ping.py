"""ping: ClickHouse answers (GET /readyz)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse_connect.driver.client import Client


def ping(client: Client, params: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    return {"ok": client.query("SELECT 1").result_rows[0][0] == 1}
