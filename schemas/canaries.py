"""Canaries, check-ins, status flips, notification channels and delivery attempts: the wire
bodies of the check-in and admin APIs and the records on the log (docs/checkins.md)."""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Annotated, Literal

import msgspec

CHECKIN_MESSAGE_MAX_CHARS = 500
CANARY_NAME_MAX_CHARS = 200
INTERVAL_MIN_S = 1
INTERVAL_MAX_S = 365 * 86400
GRACE_MIN_S = 0
GRACE_MAX_S = 365 * 86400
MAX_CHANNELS_PER_CANARY = 20

# "log": a message that changes nothing (Healthchecks' /log).
CheckinKind = Literal["success", "start", "fail", "log"]
# "maintenance": up, new or late, in a maintenance window (domain.quiet); a canary down in one
# stays "down" (its alert held).
CanaryStatus = Literal["new", "up", "late", "down", "paused", "maintenance"]
# Why a canary went down (or came back up); "too_few_events" and "events" are canaries over
# events; "not_started" is a run not started within its start margin; "failure_rate" is too
# many failures among the last runs.
FlipReason = Literal[
    "missed", "failed", "runtime_exceeded", "checkin", "too_few_events", "events",
    "not_started", "failure_rate", "run_too_long", "run_too_short", "too_early",
]  # fmt: skip
ChannelKind = Literal[
    "webhook", "slack", "email", "discord", "teams", "pagerduty", "opsgenie", "ntfy",
    "telegram", "apprise",
]  # fmt: skip

IntervalSeconds = Annotated[int, msgspec.Meta(ge=INTERVAL_MIN_S, le=INTERVAL_MAX_S)]
GraceSeconds = Annotated[int, msgspec.Meta(ge=GRACE_MIN_S, le=GRACE_MAX_S)]
CanaryName = Annotated[str, msgspec.Meta(min_length=1, max_length=CANARY_NAME_MAX_CHARS)]
ChannelIds = Annotated[list[str], msgspec.Meta(max_length=MAX_CHANNELS_PER_CANARY)]


# --- notification channels -------------------------------------------------------------------
class WebhookConfig(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="webhook", tag_field="kind"
):
    """A JSON POST to `url`, signed: header `X-Coalmine-Signature: sha256=<hex HMAC-SHA256 of
    the body with `secret`>`. Retried with exponential backoff on failure."""

    url: str
    secret: str = ""  # generated when empty
    timeout_s: float = 5.0
    max_attempts: int = 5


class SlackConfig(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="slack", tag_field="kind"
):
    """A Slack-compatible incoming webhook: POST {"text": ..., "blocks": [...]} to `url`."""

    url: str
    timeout_s: float = 5.0
    max_attempts: int = 5


class EmailConfig(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="email", tag_field="kind"
):
    """E-mail over SMTP (plain text and HTML parts)."""

    to: list[str]
    host: str
    port: int = 587
    starttls: bool = True
    username: str = ""
    password: str = ""
    sender: str = "coalmine@localhost"
    timeout_s: float = 10.0
    max_attempts: int = 5


# The services below (docs/routing.md, "Channels"): each config's `url` is the service's
# endpoint or base URL, with the public service as default, so a self-hosted one (ntfy,
# Apprise, an Opsgenie EU account) or a test receiver can stand in.


class DiscordConfig(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="discord", tag_field="kind"
):
    """A Discord channel webhook (https://discord.com/api/webhooks/<id>/<token>): content and
    an embed, no mentions."""

    url: str
    timeout_s: float = 5.0
    max_attempts: int = 5


class TeamsConfig(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="teams", tag_field="kind"
):
    """A Microsoft Teams Workflows webhook ("Post to a channel when a webhook request is
    received"): a message with an Adaptive Card."""

    url: str
    timeout_s: float = 5.0
    max_attempts: int = 5


class PagerDutyConfig(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="pagerduty", tag_field="kind"
):
    """PagerDuty Events API v2: trigger on down, resolve on up, one dedup_key per canary."""

    routing_key: str
    url: str = "https://events.pagerduty.com/v2/enqueue"
    severity: Literal["critical", "error", "warning", "info"] = "critical"
    timeout_s: float = 5.0
    max_attempts: int = 5


class OpsgenieConfig(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="opsgenie", tag_field="kind"
):
    """Opsgenie Alert API: create an alert on down, close it (by alias, one per canary) on up.
    `url` is the API's base (https://api.eu.opsgenie.com for EU accounts)."""

    api_key: str
    url: str = "https://api.opsgenie.com"
    priority: Literal["P1", "P2", "P3", "P4", "P5"] = "P1"
    timeout_s: float = 5.0
    max_attempts: int = 5


class NtfyConfig(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="ntfy", tag_field="kind"
):
    """ntfy: a JSON message published to `topic` on the server at `url`; `token` (an access
    token) if the topic is protected."""

    topic: str
    url: str = "https://ntfy.sh"
    token: str = ""
    timeout_s: float = 5.0
    max_attempts: int = 5


class TelegramConfig(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="telegram", tag_field="kind"
):
    """Telegram Bot API sendMessage to `chat_id` (a number, or @channelusername)."""

    bot_token: str
    chat_id: str
    url: str = "https://api.telegram.org"
    timeout_s: float = 5.0
    max_attempts: int = 5


class AppriseConfig(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="apprise", tag_field="kind"
):
    """An Apprise API server's notify endpoint: `url` is .../notify/<key> (its stored
    configuration), or .../notify/ with `urls` (Apprise URLs, sent with each message)."""

    url: str
    urls: str = ""
    tag: str = ""
    timeout_s: float = 5.0
    max_attempts: int = 5


ChannelConfig = (
    WebhookConfig | SlackConfig | EmailConfig | DiscordConfig | TeamsConfig | PagerDutyConfig
    | OpsgenieConfig | NtfyConfig | TelegramConfig | AppriseConfig
)  # fmt: skip


class EventsExpected(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A canary over events instead of check-ins: at least `min_count` events named `name`
    (any key, events and errors alike) must arrive in every interval."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=CANARY_NAME_MAX_CHARS)]
    min_count: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)] = 1


SCHEDULE_MAX_CHARS = 200
SLUG_MAX_CHARS = 100
ScheduleText = Annotated[str, msgspec.Meta(min_length=1, max_length=SCHEDULE_MAX_CHARS)]
TimezoneName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,100}$")]
MAX_TAGS = 20
Tag = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=MAX_TAGS)]


@functools.lru_cache(maxsize=4096)  # every canary's on each refresh of the statuses
def slugify(name: str) -> str:
    """A name as Healthchecks (Django's slugify) makes a slug of it: ASCII, lowercase, runs
    of spaces and dashes as one dash, other punctuation dropped."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text.lower())
    return re.sub(r"[-\s]+", "-", text).strip("-_")[:SLUG_MAX_CHARS]


def slug_of(canary: CanaryDefined) -> str:
    return canary.slug or slugify(canary.name)


THRESHOLD_MAX = 1000
FAILURE_WINDOW_MAX_RUNS = 1000
Threshold = Annotated[int, msgspec.Meta(ge=1, le=THRESHOLD_MAX)]


class FailureRate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Down when at least `failures` of the last `runs` runs failed (a miss counts as one)."""

    failures: Annotated[int, msgspec.Meta(ge=1, le=FAILURE_WINDOW_MAX_RUNS)]
    runs: Annotated[int, msgspec.Meta(ge=1, le=FAILURE_WINDOW_MAX_RUNS)]


class AbnormalRuns(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Opt-in: a success is a failure when its run took more than `longer_than_p95_by` x the
    p95 of the canary's last `history` runs, or less than their p5 / `shorter_than_p5_by`
    (once `min_runs` are known), or (`too_early`) when it comes before the schedule's next
    slot after the previous success (an interval canary: under half its interval)."""

    longer_than_p95_by: Annotated[float, msgspec.Meta(gt=1, le=1000)] | None = None
    shorter_than_p5_by: Annotated[float, msgspec.Meta(gt=1, le=1000)] | None = None
    too_early: bool = False
    min_runs: Annotated[int, msgspec.Meta(ge=1, le=FAILURE_WINDOW_MAX_RUNS)] = 10
    history: Annotated[int, msgspec.Meta(ge=1, le=FAILURE_WINDOW_MAX_RUNS)] = 30


# --- records on the log ----------------------------------------------------------------------
class CanaryDefined(msgspec.Struct, frozen=True, tag="canary.defined", tag_field="type"):
    """A canary created or changed: its whole definition (later records replace earlier)."""

    id: str
    name: str
    token_hash: str  # sha256 hex of the check-in token; the token itself is never stored
    interval_s: int
    grace_s: int
    channels: list[str]
    created_at: float
    changed_at: float
    max_runtime_s: int | None = None
    paused: bool = False
    events: EventsExpected | None = None  # None: a canary over check-ins
    # A cron canary (domain.schedule): due at each slot of `schedule` in `timezone`
    # instead of every `interval_s` (0 for such a canary).
    schedule: str | None = None
    timezone: str | None = None
    # A run must start (/start) within this long after its slot; then only max_runtime_s
    # bounds it. None: grace bounds both, as before.
    start_margin_s: int | None = None
    failure_threshold: int = 1  # consecutive failures or misses before down
    recovery_threshold: int = 1  # consecutive successes before up again
    failure_rate: FailureRate | None = None
    slug: str | None = None  # for /ping/<ping-key>/<slug>; None: derived from the name
    abnormal: AbnormalRuns | None = None
    # Tags group canaries for maintenance windows, dependencies and badges.
    tags: list[str] = []
    # While one of these canaries (ids), or a canary carrying one of these tags, is down, this
    # canary's down-alerts are held and listed in that one's alert (domain.dependencies).
    depends_on: list[str] = []
    depends_on_tags: list[str] = []


class CanaryDeleted(msgspec.Struct, frozen=True, tag="canary.deleted", tag_field="type"):
    id: str
    deleted_at: float


GROUP_WAIT_MAX_S = 300.0


class ChannelDefined(msgspec.Struct, frozen=True, tag="channel.defined", tag_field="type"):
    id: str
    name: str
    config: ChannelConfig
    created_at: float
    # Canaries going down (or up) within this long of the first become one notification
    # (domain.notification_groups); 0: each at once. Paging services (PagerDuty, Opsgenie)
    # are never grouped: each canary is an incident there, resolved by its own recovery.
    group_wait_s: float = 0.0
    # While a canary stays down, its alert is repeated every `remind_every_s` (0: never), at
    # most `remind_max` times; recovery, pause or an acknowledgement stops it (Incident).
    remind_every_s: int = 0
    remind_max: int = 10
    # When its settings were last changed (PATCH): a new version of the same id; 0: never.
    changed_at: float = 0.0


REMIND_EVERY_MIN_S = 60
REMIND_MAX_MAX = 100


class Incident(msgspec.Struct, frozen=True, tag="incident", tag_field="type"):
    """A canary down on a channel that reminds, as the notifier keeps it on the control topic
    (carried across rotations like definitions; latest per id wins): opened when its down
    alert is sent, counted up at each reminder, closed by recovery, pause or deletion."""

    id: str  # incident:<canary id>:<channel id>
    canary_id: str
    channel_id: str
    flip_id: str  # the down flip
    opened_at: float
    changed_at: float
    reminders: int = 0
    closed: bool = False


class IncidentAcknowledged(
    msgspec.Struct, frozen=True, tag="incident.acknowledged", tag_field="type"
):
    """Someone has seen the down alert `flip_id`: no more reminders for it, on any channel."""

    id: str  # ack:<flip id>
    flip_id: str
    canary_id: str
    at: float
    by: str  # "admin" (API/CLI) or "link" (the signed link in the alert)


def incident_id(canary_id: str, channel_id: str) -> str:
    return f"incident:{canary_id}:{channel_id}"


def ack_id(flip_id: str) -> str:
    return f"ack:{flip_id}"


class ChannelDeleted(msgspec.Struct, frozen=True, tag="channel.deleted", tag_field="type"):
    id: str
    deleted_at: float


class CheckIn(msgspec.Struct, frozen=True, tag="checkin", tag_field="type", omit_defaults=True):
    """One check-in. The API appends them in CheckIns groups; a lone one is read the same."""

    id: str  # UUIDv7 hex
    canary_id: str
    kind: CheckinKind
    at: float
    message: str = ""
    rid: str = ""  # a run's id (Healthchecks' ?rid=): ties a start to its finish


class CheckIns(msgspec.Struct, frozen=True, tag="checkins", tag_field="type"):
    """Check-ins of canaries of one partition that arrived together (ingest_api.group_append):
    one record for many, because per-record costs dominate on the log and in its readers."""

    checkins: list[CheckIn]


class StateRestored(msgspec.Struct, frozen=True, tag="state.restored", tag_field="type"):
    """Written by the store onto an empty log (embedded restart): where a canary stood, so the
    heartbeats agent neither forgets a down canary nor counts the service's own downtime as
    missed check-ins (a canary that was up starts a fresh period at `at`)."""

    canary_id: str
    status: Literal["new", "up", "down"]
    at: float
    last_checkin_at: float | None = None
    last_message: str = ""
    # Why its last down flip was held (Flip.held): its recovery must be held too.
    held: str = ""


class Tick(msgspec.Struct, frozen=True, tag="tick", tag_field="type"):
    """Appended by the heartbeats worker to each of its partitions every few hundred ms. When
    the agent reads a tick written at `at`, every check-in acknowledged before `at` is behind
    it in the partition, so it has been processed: `at` is the partition's stream time."""

    at: float


class EventsSeen(msgspec.Struct, frozen=True, tag="events.seen", tag_field="type"):
    """`count` events an events canary watches for arrived (by the API's clock) at `at`;
    appended by the error router for each batch holding some, not for historical ones."""

    canary_id: str
    count: int
    at: float


HeartbeatRecord = (
    CheckIn | CheckIns | StateRestored | CanaryDefined | CanaryDeleted | Tick | EventsSeen
)


def unpacked(record: HeartbeatRecord) -> list[HeartbeatRecord] | tuple[HeartbeatRecord]:
    """The records a check-ins topic record stands for: a CheckIns group's check-ins, in order."""
    return record.checkins if isinstance(record, CheckIns) else (record,)  # type: ignore[return-value]


CHECKINS_PER_RECORD_MAX = 250  # x at most ~3 KB (500 escaped characters + ids) < 1 MiB


class Flip(msgspec.Struct, frozen=True):
    """A canary's status changed (canary.down / canary.up). `id` is derived from the canary and
    the deadline it concerns, so a flip emitted twice (after a worker crash) is one flip."""

    id: str
    canary_id: str
    canary_name: str
    status: Literal["down", "up"]
    reason: FlipReason
    at: float
    last_checkin_at: float | None = None
    message: str = ""
    channels: list[str] = []
    # Why it is sent to no channel (recorded and shown, not notified): "maintenance <window
    # id>" (domain.quiet), or "depends on <canary name>" (domain.dependencies); "" if sent.
    held: str = ""
    # A down flip: the names of the canaries depending on this one that are down with it.
    dependents: list[str] = []


class DeliveryAttempt(msgspec.Struct, frozen=True):
    """One try at sending a flip to one channel (stored in ClickHouse, visible by API)."""

    flip_id: str
    channel_id: str
    channel_kind: ChannelKind
    attempt: int
    at: float
    ok: bool
    detail: str = ""  # HTTP status or the error, never a secret


# Built once, shared by the worker that reads these topics and the store that files them.
heartbeat_decoder = msgspec.json.Decoder(HeartbeatRecord)  # type: ignore[arg-type]
flip_decoder = msgspec.json.Decoder(Flip)
attempt_decoder = msgspec.json.Decoder(DeliveryAttempt)
