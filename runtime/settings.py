"""The one settings object. Built once from the environment (COALMINE_*), then overridden by
command-line flags; nothing else in the project reads os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from schemas.errors import SettingsError

ENV_PREFIX = "COALMINE_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # Where the log lives. Empty: `coalmine up` starts the embedded Tansu broker.
    kafka_bootstrap: str = ""
    # Where ClickHouse lives (http(s)://user:pass@host:8123/db). Empty: chDB in data_dir.
    clickhouse_url: str = ""
    data_dir: str = "coalmine-data"
    host: str = "127.0.0.1"
    port: int = 8000
    # HTTPS: the API's certificate chain and private key (PEM files). Empty: plain HTTP.
    tls_cert: str = ""
    tls_key: str = ""
    # Client side: a CA bundle (or the certificate itself) to verify an https service with,
    # besides the system's CAs (coalmine.tls.client_verify).
    tls_ca: str = ""
    # Bearer token for /api/v1/admin. Empty: `coalmine up` generates one into data_dir.
    admin_token: str = ""
    # Unix socket of the store process, which owns ClickHouse when it is chDB (one process
    # per data directory). Empty: the API queries ClickHouse itself.
    store_socket: str = ""
    # Unix datagram socket the worker listens on for the API's "appended after a quiet spell"
    # (runtime.nudges), where its readers rest (fetch_rests). Empty: no nudges.
    worker_socket: str = ""
    # How long an ingest request may wait for the broker's acknowledgement before a 503.
    append_timeout_s: float = 5.0
    # How long a process waits for the broker / ClickHouse at start before giving up.
    startup_timeout_s: float = 30.0
    # Sink batching: flush to ClickHouse at this many rows or after this many seconds.
    sink_max_rows: int = 50_000
    sink_max_wait_s: float = 0.25
    # The sink's consumer group: its committed offsets say what is stored. A new name makes
    # the sink re-read the whole log, storing only what ClickHouse lacks.
    sink_group: str = "coalmine-sink"
    # How many API processes `coalmine up` runs on the one port (SO_REUSEPORT).
    api_workers: int = 1
    # Back-pressure (ingest_api/backpressure.py): refuse ingest with 503 + Retry-After while
    # the store sink is this many records (batches) behind (0: never), or while this many
    # batches per API process wait for the log's acknowledgement.
    shed_lag_records: int = 50_000
    max_in_flight: int = 1_000
    # The bulk lane's budget per key (POST /api/v1/events/bulk), shared by the API processes.
    bulk_rate_per_hour: int = 3_600_000
    bulk_burst: int = 1_000_000
    # How long a bulk request's body may take to arrive before a 408 (50 MB over a slow link).
    bulk_body_timeout_s: float = 120.0
    # Healthchecks-compatible ping URLs (ingest_api/ping.py): the ping key of slug URLs
    # (empty: derived from the admin token), and how much of a ping's body is kept as its
    # message (Healthchecks' default; the rest is cut with a marker, never refused).
    ping_key: str = ""
    # The service's address as people reach it, for links in alerts (the acknowledgement
    # link of domain.reminders). Empty: http(s)://host:port.
    public_url: str = ""
    ping_body_max_bytes: int = 10_000
    # Client side: the ingest key `coalmine import` sends when neither --key nor --key-file
    # gives one (an environment variable keeps it out of the shell history and `ps`).
    ingest_key: str = ""
    # The default digest (events and errors no routing rule sends elsewhere): daily at this
    # local time (HH:MM) in this IANA timezone.
    digest_at: str = "09:00"
    digest_timezone: str = "UTC"
    # Tests only: a file holding the epoch seconds the digest builder takes as "now", so
    # digests can be driven deterministically. Empty: the system clock.
    clock_file: str = ""
    # Client side: the running service's base URL for CLI commands. Empty: --host/--port or
    # COALMINE_HOST/COALMINE_PORT when given, else the URL `coalmine up` recorded in data_dir.
    url: str = ""
    # Consumers pause their partitions while the log is idle, instead of holding a fetch: for
    # a broker that burns CPU while it holds one and answers it only when its wait ends (the
    # embedded Tansu; docs/benchmarks.md, "Idle cost"). `coalmine up` turns it on when it starts that
    # broker; a Kafka or Redpanda answers a held fetch as soon as records arrive, so off.
    fetch_rests: bool = False
    # Rotate the embedded broker's log (coalmine.rotation) once the broker holds this many MB
    # (0: never). Only `coalmine up` rotates, and only a broker it started: Kafka and Redpanda
    # have retention of their own. Small on purpose: the broker's fetch cost grows with what it
    # holds, and at 10,000 events/s a 256 MB log already cut throughput to ~40 % on 2 cores,
    # where 48 MB held it (docs/benchmarks.md, the soaks).
    log_rotate_mb: int = 64
    # A rotation whose old-generation worker has not moved for this long restarts that worker
    # (coalmine.launcher.LogRotation.rotate): longer than a worker's start on a saturated machine.
    rotation_stall_s: float = 60.0
    # Set by `coalmine up` for its children when it runs the embedded broker: the file saying
    # which log generation each process works in (runtime.generations). Empty: generation 0.
    generation_file: str = ""
    log_level: str = "info"
    # json (one object per line), text, or auto: text on a terminal, JSON otherwise.
    log_format: str = "auto"

    @property
    def clickhouse_dsn(self) -> str:
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_path / 'clickhouse').resolve()}"

    @property
    def embedded_clickhouse(self) -> bool:
        return self.clickhouse_dsn.startswith("chdb:")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def metrics_path(self) -> Path:
        """Where every process of the service writes its Prometheus metrics."""
        return self.data_path / "metrics"

    @property
    def admin_token_path(self) -> Path:
        return self.data_path / "admin-token"

    @property
    def listen_url_path(self) -> Path:
        """Where `coalmine up` records the URL it serves (coalmine.running)."""
        return self.data_path / "url"

    @property
    def running_mark_path(self) -> Path:
        """Present while a `coalmine up` runs on data_dir (coalmine.running)."""
        return self.data_path / "running"

    @property
    def link_url(self) -> str:
        return self.public_url.rstrip("/") or self.base_url

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls_cert else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def to_env(self) -> dict[str, str]:
        """The environment that makes a child process build these same settings."""
        env = {}
        for field in msgspec.structs.fields(self):
            value = getattr(self, field.name)
            env[ENV_PREFIX + field.name.upper()] = str(value)
        return env

    def replace(self, **changes: Any) -> Settings:
        return load_settings({}, base=self, **changes)


def load_settings(
    environ: Mapping[str, str] | None = None, *, base: Settings | None = None, **overrides: Any
) -> Settings:
    """Settings from COALMINE_* variables, then from explicit overrides (flags) on top."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = msgspec.structs.asdict(base) if base else {}
    overrides = {k: str(v) if isinstance(v, Path) else v for k, v in overrides.items()}
    for field in msgspec.structs.fields(Settings):
        raw = environ.get(ENV_PREFIX + field.name.upper())
        if raw is not None:
            values[field.name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid setting: {exc}") from None
    if settings.admin_token and len(settings.admin_token) < 16:
        raise SettingsError("COALMINE_ADMIN_TOKEN must be at least 16 characters")
    if settings.ping_key and not (
        16 <= len(settings.ping_key) <= 30
        and settings.ping_key.replace("-", "").replace("_", "").isalnum()
    ):
        # Not 32 characters nor a UUID: /ping/<x>/... would read it as a check-in token.
        raise SettingsError("COALMINE_PING_KEY must be 16-30 URL-safe characters (A-Z a-z 0-9 - _)")
    if not 0 <= settings.ping_body_max_bytes <= 100_000:
        raise SettingsError("COALMINE_PING_BODY_MAX_BYTES must be between 0 and 100,000")
    if not settings.bulk_body_timeout_s > 0:
        raise SettingsError("COALMINE_BULK_BODY_TIMEOUT_S must be over 0")
    if not 1 <= settings.api_workers <= 64:
        raise SettingsError("api_workers must be between 1 and 64")
    _check_digest_default(settings)
    if settings.log_format not in ("auto", "json", "text"):
        raise SettingsError(
            f"COALMINE_LOG_FORMAT must be auto, json or text, got {settings.log_format!r}"
        )
    if not 0 < settings.port < 65536:
        raise SettingsError(f"port {settings.port} is out of range")
    return settings


def _check_digest_default(settings: Settings) -> None:
    import re
    import zoneinfo

    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", settings.digest_at):
        raise SettingsError(f"COALMINE_DIGEST_AT must be HH:MM, got {settings.digest_at!r}")
    try:
        zoneinfo.ZoneInfo(settings.digest_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"COALMINE_DIGEST_TIMEZONE: unknown timezone {settings.digest_timezone!r}"
        ) from None


def address_in_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Whether COALMINE_HOST or COALMINE_PORT is set: a client command then talks to that
    address rather than to the one `coalmine up` recorded."""
    environ = os.environ if environ is None else environ
    return any(ENV_PREFIX + name in environ for name in ("HOST", "PORT"))
