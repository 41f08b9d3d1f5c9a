"""Name -> query function; the one list the HTTP API, the store and the CLI dispatch on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client

from queries.alerting import incidents, quiet_periods
from queries.canaries import canary_facts, canary_history, canary_notifications, canary_runs
from queries.digest import digest_rows
from queries.errors import errors
from queries.events import events
from queries.freshness import freshness
from queries.overview import recent_checkins, recent_flips, totals
from queries.params import QueryError
from queries.percentiles import percentiles
from queries.ping import ping
from queries.rejections import rejections
from queries.series import series
from queries.top_names import top_names

QueryFn = Callable[[Client, dict[str, str], dt.datetime], dict[str, Any]]

NAMED_QUERIES: dict[str, QueryFn] = {
    "series": series,
    "top_names": top_names,
    "errors": errors,
    "percentiles": percentiles,
    "events": events,
    "rejections": rejections,
    "canary_facts": canary_facts,
    "canary_history": canary_history,
    "canary_notifications": canary_notifications,
    "canary_runs": canary_runs,
    "quiet_periods": quiet_periods,
    "incidents": incidents,
    "digest_rows": digest_rows,
    "freshness": freshness,
    "ping": ping,
    # The web UI's (ingest_api.ui): overview totals, check-in strips, recent flips.
    "totals": totals,
    "recent_checkins": recent_checkins,
    "recent_flips": recent_flips,
}

# What GET /api/v1/query/<name> serves. The others are the services' own (the admin API's
# canary facts, the digests' rows, the readiness ping): not an API, so not offered as one.
PUBLIC_QUERIES = (
    "series", "top_names", "errors", "percentiles", "events", "rejections",
    "canary_history", "canary_notifications", "canary_runs", "freshness", "quiet_periods",
    "incidents",
)  # fmt: skip
# Other names a public query answers to over HTTP: the CLI's.
QUERY_ALIASES = {"top": "top_names"}


def run_query(
    client: Client, name: str, params: dict[str, str], now: dt.datetime | None = None
) -> dict[str, Any]:
    query = NAMED_QUERIES.get(name)
    if query is None:
        raise QueryError(f"unknown query {name!r}")
    return query(client, params, now or dt.datetime.now(dt.UTC))
