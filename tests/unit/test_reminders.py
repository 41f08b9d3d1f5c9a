"""domain.reminders: when a reminder is due, when an incident closes, and the signed links."""

from __future__ import annotations

import json

import pytest

from domain.reminders import (
    ack_signature,
    ack_signature_ok,
    ack_url,
    reminder_due,
    rendered_reminder,
)
from domain.store_rows import control_rows
from schemas.canaries import ChannelDefined, Incident, WebhookConfig
from schemas.records import record_encoder

OPENED = 1_000.0
INCIDENT = Incident("incident:can_1:chn_1", "can_1", "chn_1", "can_1:down:due1", OPENED, OPENED)


def channel(every: int = 600, cap: int = 3) -> ChannelDefined:
    return ChannelDefined(
        "chn_1", "pager", WebhookConfig("http://h/"), 1.0, remind_every_s=every, remind_max=cap
    )


def due(incident: Incident = INCIDENT, now: float = OPENED, **changes: object) -> object:
    options: dict[str, object] = {"acknowledged": False, "canary_active": True, "now": now}
    options.update(changes)
    return reminder_due(incident, options.pop("channel", channel()), **options)  # type: ignore[arg-type]


def test_reminder_n_is_due_n_periods_after_the_alert() -> None:
    assert due(now=OPENED + 599) is None
    assert due(now=OPENED + 600) == 1
    second = Incident(
        **{**{f: getattr(INCIDENT, f) for f in INCIDENT.__struct_fields__}, "reminders": 1}
    )
    assert due(second, now=OPENED + 1199) is None
    assert due(second, now=OPENED + 1200) == 2


def test_it_stops_at_the_cap_on_acknowledgement_pause_or_a_deleted_channel() -> None:
    capped = Incident(
        **{**{f: getattr(INCIDENT, f) for f in INCIDENT.__struct_fields__}, "reminders": 3}
    )
    assert due(capped, now=OPENED + 10_000) == "close"
    assert due(acknowledged=True) == "close"
    assert due(canary_active=False) == "close"
    assert due(channel=None) == "close"
    assert due(channel=channel(every=0)) == "close"


def test_links_are_signed_per_alert() -> None:
    link = ack_url("https://coalmine.example/", "k" * 64, "can_1:down:due1")
    assert link.startswith("https://coalmine.example/ack/can_1:down:due1?sig=")
    signature = link.rsplit("=", 1)[1]
    assert ack_signature_ok("k" * 64, "can_1:down:due1", signature)
    assert not ack_signature_ok("k" * 64, "can_1:down:due2", signature)
    assert not ack_signature_ok("x" * 64, "can_1:down:due1", signature)
    assert len(ack_signature("k", "f")) == 32


def test_a_reminder_says_which_and_links_the_acknowledgement() -> None:
    notice = rendered_reminder(INCIDENT, "backup", 3, "https://c/ack/x?sig=y", OPENED + 600)
    assert notice.id == "can_1:down:due1:remind:1" and notice.event == "canary.reminder"
    body = json.loads(notice.webhook())
    assert (body["reminder"], body["reminders_max"], body["ack_url"]) == (
        1,
        3,
        "https://c/ack/x?sig=y",
    )
    assert notice.title.startswith("Reminder: backup is still DOWN")
    assert notice.incident == "coalmine-can_1"  # PagerDuty/Opsgenie: the same incident


@pytest.mark.parametrize("closed", [False, True])
def test_a_closed_incident_is_not_written_back_at_restart(closed: bool) -> None:
    incident = Incident(
        **{**{f: getattr(INCIDENT, f) for f in INCIDENT.__struct_fields__}, "closed": closed}
    )
    [row] = control_rows(incident, record_encoder.encode(incident))
    assert (row[0], row[1], row[3]) == ("incident:can_1:chn_1", "incident", closed)


def test_a_hostile_ack_link_is_refused_not_an_error() -> None:
    from domain.reminders import ack_signature, ack_signature_ok

    assert not ack_signature_ok("k", "Fé#\x13\ud800", "\u00e5\U0001f8f9")
    assert ack_signature_ok("k", "can_1:down:1", ack_signature("k", "can_1:down:1"))
