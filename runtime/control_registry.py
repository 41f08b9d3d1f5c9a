"""Canaries and channels as every API process knows them: derived from the control topic,
like the key registry. Check-in tokens are looked up by their SHA-256, never kept in clear."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets

from runtime.key_registry import URLSAFE_CHARS
from runtime.settings import Settings
from schemas.canaries import (
    CanaryDefined,
    CanaryDeleted,
    ChannelDefined,
    ChannelDeleted,
    Incident,
    IncidentAcknowledged,
)
from schemas.control import ControlRecord, control_decoder
from schemas.quiet import SilenceDefined, WindowDefined
from schemas.routing import RouteDefined, RouteDeleted

# 192 bits: unguessable, and short enough for a cron line.
CHECKIN_TOKEN_BYTES = 24
TOKEN_CHARS = math.ceil(CHECKIN_TOKEN_BYTES * 4 / 3)  # token_urlsafe: unpadded base64, 32


def generate_token() -> str:
    return secrets.token_urlsafe(CHECKIN_TOKEN_BYTES)


def could_be_token(token: str) -> bool:
    """The shape generate_token gives, or a UUID (a check imported from Healthchecks keeps its
    ping UUID as its token): anything else is refused without a look at the log."""
    if len(token) == TOKEN_CHARS:
        return URLSAFE_CHARS.issuperset(token)
    return is_uuid(token)


def is_uuid(text: str) -> bool:
    """A UUID as Healthchecks writes one: 36 characters, lowercase hex and four dashes."""
    return (
        len(text) == 36
        and [len(part) for part in text.split("-")] == [8, 4, 4, 4, 12]
        and _HEX_DASH.issuperset(text)
    )


_HEX_DASH = frozenset("0123456789abcdef-")


PING_KEY_CHARS = 22  # as Healthchecks' ping keys


def ping_key(settings: Settings) -> str:
    """The service's ping key for /ping/<ping-key>/<slug> (ingest_api.ping)."""
    if settings.ping_key:
        return settings.ping_key
    digest = hmac.new(settings.admin_token.encode(), b"coalmine ping key", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:PING_KEY_CHARS]


def ack_link_key(settings: Settings) -> str:
    """The key that signs acknowledgement links (domain.reminders): derived from the admin
    token, so every process of the service has it and a new admin token voids old links."""
    return hmac.new(
        settings.admin_token.encode(), b"coalmine ack links", hashlib.sha256
    ).hexdigest()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ControlRegistry:
    def __init__(self) -> None:
        self.canaries: dict[str, CanaryDefined] = {}
        self.channels: dict[str, ChannelDefined] = {}
        self.routes: dict[str, RouteDefined] = {}
        self.windows: dict[str, WindowDefined] = {}  # maintenance windows (schemas.quiet)
        self.silences: dict[str, SilenceDefined] = {}
        # Reminders (processors.agents.notifier): incident id -> its latest state, and the
        # down flips acknowledged (flip id -> the first acknowledgement).
        self.incidents: dict[str, Incident] = {}
        self.acknowledged: dict[str, IncidentAcknowledged] = {}
        # event name -> ids of the canaries over events that count it
        self.event_canaries: dict[str, set[str]] = {}
        self._by_token: dict[str, str] = {}

    def apply_bytes(self, value: bytes) -> None:
        self.apply(control_decoder.decode(value))

    def apply(self, record: ControlRecord) -> None:
        if isinstance(record, CanaryDefined):
            old = self.canaries.get(record.id)
            if old is not None and old.changed_at > record.changed_at:
                return
            self._forget_events(old)
            self.canaries[record.id] = record
            self._by_token[record.token_hash] = record.id
            if record.events is not None:
                self.event_canaries.setdefault(record.events.name, set()).add(record.id)
        elif isinstance(record, CanaryDeleted):
            old = self.canaries.pop(record.id, None)
            if old is not None:
                self._by_token.pop(old.token_hash, None)
                self._forget_events(old)
        elif isinstance(record, ChannelDefined):
            self.channels[record.id] = record
        elif isinstance(record, ChannelDeleted):
            self.channels.pop(record.id, None)
        elif isinstance(record, RouteDefined):
            old_route = self.routes.get(record.id)
            if old_route is None or old_route.changed_at <= record.changed_at:
                self.routes[record.id] = record
        elif isinstance(record, RouteDeleted):
            self.routes.pop(record.id, None)
        elif isinstance(record, WindowDefined):
            old_window = self.windows.get(record.id)
            if old_window is None or old_window.changed_at <= record.changed_at:
                self.windows[record.id] = record
        elif isinstance(record, SilenceDefined):
            old_silence = self.silences.get(record.id)
            if old_silence is None or old_silence.changed_at <= record.changed_at:
                self.silences[record.id] = record
        elif isinstance(record, Incident):
            old_incident = self.incidents.get(record.id)
            if old_incident is None or old_incident.changed_at <= record.changed_at:
                self.incidents[record.id] = record
        elif isinstance(record, IncidentAcknowledged):
            self.acknowledged.setdefault(record.flip_id, record)

    def open_incidents(self, canary_id: str | None = None) -> list[Incident]:
        return [
            incident
            for incident in self.incidents.values()
            if not incident.closed and canary_id in (None, incident.canary_id)
        ]

    def _forget_events(self, canary: CanaryDefined | None) -> None:
        if canary is not None and canary.events is not None:
            watching = self.event_canaries.get(canary.events.name, set())
            watching.discard(canary.id)
            if not watching:
                self.event_canaries.pop(canary.events.name, None)

    def canary_by_token(self, token: str) -> CanaryDefined | None:
        canary_id = self._by_token.get(hash_token(token))
        return None if canary_id is None else self.canaries.get(canary_id)
