"""A named query of queries/ as panel SQL: its bound ClickHouse parameters ({from_ms:Int64}…)
replaced by what Grafana fills in, so a panel runs the very SQL the API runs, not a copy.

Grafana's global `${__from}`/`${__to}` are the range's bounds in epoch milliseconds, exactly
what the queries' `from_ms`/`to_ms` are; the frontend replaces them before the plugin's backend
expands its `$__…` macros.
"""

from __future__ import annotations

import re

from schemas.errors import UnboundParameter

PLACEHOLDER = re.compile(r"\{(\w+):([^{}]+)\}")

# The range parameters every named query shares.
RANGE = {"from_ms": "${__from}", "to_ms": "${__to}"}


def bind(sql: str, **values: str) -> str:
    """`sql` with each {name:Type} replaced by values[name] (SQL text), range bounds included."""
    values = {**RANGE, **values}

    def substitute(match: re.Match[str]) -> str:
        name = match[1]
        if name not in values:
            raise UnboundParameter(f"no value for {{{name}:{match[2]}}}")
        return f"({values[name]})"

    return PLACEHOLDER.sub(substitute, sql).strip()
