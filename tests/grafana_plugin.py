"""What Grafana and grafana-clickhouse-datasource do to a panel's SQL before ClickHouse sees it,
so the tests can run every panel on chDB.

Followed: grafana/clickhouse-datasource v4.20.0 (release commit 973c4a5; the same for these
macros at 1d04063, the newest read), the version docker-compose.yml installs, in the order a
query takes:
1. the frontend's applyConditionalAll (src/data/CHDatasource.ts): `$__conditionalAll(expr,
   $var)` becomes `1=1` when the variable is All (`$__all`) or empty, else `expr`;
2. Grafana's template service: `${__from}`/`${__to}` (epoch ms), `${var:singlequote}`
   ('a','b' with \\' escaped), and `$var`/`${var}` with the plugin's own format (an array is
   joined as 'a','b' without escaping; a single value goes in bare). All without a custom
   all-value stands for every option;
3. the backend's macros (pkg/macros/macros.go): $__timeFilter(c) = `c >= toDateTime(from_s)
   AND c <= toDateTime(to_s)`, $__timeFilter_ms with fromUnixTimestamp64Milli(ms),
   $__fromTime/$__toTime = toDateTime(s), $__fromTime_ms/$__toTime_ms, $__timeInterval(c) =
   `toStartOfInterval(toDateTime(c), INTERVAL n second)` and $__interval_s = n, n being the
   interval in whole seconds, at least 1.
Anything else that starts with `$__` is refused: a panel must not rely on what this file does
not model.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence

ALL = "$__all"
_CONDITIONAL_ALL = "$__conditionalAll("
_TEMPLATE = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}")
_MACRO = re.compile(r"\$__(\w+)")


class UnsupportedMacro(ValueError):
    pass


def _call_args(sql: str, open_paren: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the call whose `(` is at open_paren (commas inside
    nested parentheses belong to an argument), and the index after its `)`."""
    depth, start, args = 0, open_paren + 1, []
    for i in range(open_paren, len(sql)):
        char = sql[i]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return args, i + 1
        elif char == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
    raise UnsupportedMacro(f"unbalanced parentheses after {sql[open_paren - 20 : open_paren]!r}")


def apply_conditional_all(sql: str, variables: Mapping[str, Sequence[str] | str]) -> str:
    # Like the plugin: from the last occurrence backwards, so nested calls resolve inside out.
    while (at := sql.rfind(_CONDITIONAL_ALL)) != -1:
        args, end = _call_args(sql, at + len(_CONDITIONAL_ALL) - 1)
        if len(args) != 2:
            raise UnsupportedMacro("$__conditionalAll takes two arguments")
        name = re.search(r"(?<=\$\{)\w+(?=\})|(?<=\$)\w+", args[1].strip())
        value = variables.get(name[0]) if name else None
        text = value if isinstance(value, str) else ",".join(value or [])
        sql = sql[:at] + ("1=1" if text in ("", ALL) else args[0]) + sql[end:]
    return sql


def _quoted(values: Sequence[str], escape: bool) -> str:
    quote: Callable[[str], str] = (lambda v: v.replace("'", "\\'")) if escape else (lambda v: v)
    return ",".join(f"'{quote(v)}'" for v in values)


def replace_variables(
    sql: str,
    variables: Mapping[str, Sequence[str] | str],
    options: Mapping[str, Sequence[str]],
    start: dt.datetime,
    end: dt.datetime,
) -> str:
    globals_ = {"__from": str(_ms(start)), "__to": str(_ms(end))}

    def substitute(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name in globals_:
            return globals_[name]
        if name not in variables:
            return match[0]  # not a variable (e.g. a $__ macro): left for the backend
        value = variables[name]
        if value == [ALL] or value == ALL:
            value = list(options[name])
        if match[3] == "singlequote":
            return _quoted([value] if isinstance(value, str) else value, escape=True)
        if match[3]:
            raise UnsupportedMacro(f"format {match[3]!r} is not modelled")
        return value if isinstance(value, str) else _quoted(value, escape=False)

    return _TEMPLATE.sub(substitute, sql)


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def expand_macros(sql: str, start: dt.datetime, end: dt.datetime, interval_s: float) -> str:
    seconds = int(max(interval_s, 1))
    from_s, to_s = int(start.timestamp()), int(end.timestamp())
    constants = {
        "fromTime": f"toDateTime({from_s})",
        "toTime": f"toDateTime({to_s})",
        "fromTime_ms": f"fromUnixTimestamp64Milli({_ms(start)})",
        "toTime_ms": f"fromUnixTimestamp64Milli({_ms(end)})",
        "interval_s": str(seconds),
    }
    functions = {
        "timeFilter": lambda c: f"{c} >= toDateTime({from_s}) AND {c} <= toDateTime({to_s})",
        "timeFilter_ms": lambda c: (
            f"{c} >= fromUnixTimestamp64Milli({_ms(start)})"
            f" AND {c} <= fromUnixTimestamp64Milli({_ms(end)})"
        ),
        "timeInterval": lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {seconds} second)",
    }
    out, i = [], 0
    while match := _MACRO.search(sql, i):
        out.append(sql[i : match.start()])
        name = match[1]
        if name in constants:
            out.append(constants[name])
            i = match.end()
        elif name in functions:
            if sql[match.end() : match.end() + 1] != "(":
                raise UnsupportedMacro(f"$__{name} needs an argument")
            args, i = _call_args(sql, match.end())
            if len(args) != 1:
                raise UnsupportedMacro(f"$__{name} takes one argument")
            out.append(functions[name](args[0].strip()))
        else:
            raise UnsupportedMacro(f"$__{name}")
    out.append(sql[i:])
    return "".join(out)


def render(
    sql: str,
    *,
    start: dt.datetime,
    end: dt.datetime,
    interval_s: float,
    variables: Mapping[str, Sequence[str] | str] | None = None,
    options: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The SQL ClickHouse receives for a panel's rawSql."""
    variables = variables or {}
    sql = apply_conditional_all(sql, variables)
    sql = replace_variables(sql, variables, options or {}, start, end)
    return expand_macros(sql, start, end, interval_s)
