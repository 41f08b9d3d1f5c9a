"""The errors a user can cause or fix (bad setting, busy port, missing dependency, service
down), turned into one line for the terminal. Anything else is a bug and keeps its traceback."""

from __future__ import annotations


def describe(exc: BaseException) -> str | None:
    from coalmine.broker import BrokerMissing
    from runtime.clickhouse_client import ClickHouseUnavailable
    from coalmine.client import ServiceError
    from coalmine.launcher import LaunchError
    from runtime.kafka_client import LogUnavailable
    from runtime.settings import SettingsError

    known = (
        BrokerMissing,
        ClickHouseUnavailable,
        LaunchError,
        LogUnavailable,
        ServiceError,
        SettingsError,
    )
    if isinstance(exc, known):
        return str(exc)
    return None
