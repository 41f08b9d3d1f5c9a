"""The named analytics queries, shared by the HTTP API, the CLI and the dashboards.

Each query is a function from (client, parsed parameters) to a JSON-ready dict; user input only
ever reaches ClickHouse as bound parameters, never pasted into SQL.
"""

from queries.params import QueryError
from queries.registry import NAMED_QUERIES, PUBLIC_QUERIES, QUERY_ALIASES, run_query

__all__ = ["NAMED_QUERIES", "PUBLIC_QUERIES", "QUERY_ALIASES", "QueryError", "run_query"]
