"""Logging for every process: one JSON object per line (for log shippers), or plain text for a
person at a terminal (`COALMINE_LOG_FORMAT=json|text|auto`; auto: text on a TTY, else JSON).

Lines written while an API request is handled carry its request id (runtime.metrics sets
it from `X-Request-Id` or makes one, and returns it in the response). Nothing here logs a
secret: keys, tokens and check-in paths never reach a log call in the first place.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import sys
from typing import Any

import msgspec

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_encode = msgspec.json.Encoder().encode
# LogRecord attributes that are not `extra=` fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "role", "msg", "request_id"?, "exc"?, extra fields...}."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "role": self.role,
            "msg": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            line["request_id"] = current
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = (
                    value if isinstance(value, str | int | float | bool | None) else repr(value)
                )
        return _encode(line).decode()


class TextFormatter(logging.Formatter):
    def __init__(self, role: str) -> None:
        super().__init__(f"%(asctime)s {role} %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        current = request_id.get()
        return text if current is None else f"{text} [request {current}]"


def use_json(log_format: str, stream: Any = None) -> bool:
    if log_format == "json":
        return True
    if log_format == "text":
        return False
    return not (stream or sys.stderr).isatty()


def handler(role: str, log_format: str) -> logging.Handler:
    out = logging.StreamHandler(sys.stderr)
    out.setFormatter(JsonFormatter(role) if use_json(log_format) else TextFormatter(role))
    return out


# Every log line below WARNING from these libraries is built even when not printed, and that
# costs ~10% of the ingest path (measured): keep them quiet unless asked. httpx would also log
# each of the service's own internal requests (`GET http://store/ready`) at INFO.
NOISY_LOGGERS = ("aiokafka", "kafka", "faust", "mode", "httpx", "httpcore")


def quiet_client_loggers(level: int = logging.WARNING) -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(level)


def configure(role: str, log_format: str, level: int) -> None:
    """The root logger of this process: one handler on stderr, in the chosen format."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(role, log_format))
    root.setLevel(level)
    quiet_client_loggers()
