"""The service channels (Discord, Teams, PagerDuty, Opsgenie, ntfy, Telegram, Apprise) against a
real local HTTP receiver standing in for each service (their base URL is a channel setting):
the path, headers and body each service's documented API expects, for a canary going down and
coming back up; then created by `coalmine channels create` and tried by `coalmine channels test`
on a running service."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from runtime.notify_senders import deliver, http_session
from schemas.canaries import (
    AppriseConfig,
    ChannelConfig,
    DeliveryAttempt,
    DiscordConfig,
    Flip,
    NtfyConfig,
    OpsgenieConfig,
    PagerDutyConfig,
    TeamsConfig,
    TelegramConfig,
)
from tests.integration.harness import Stack
from tests.integration.receivers import HttpReceiver, ReceivedRequest, Reply
from tests.integration.test_cli import coalmine

DOWN = Flip(
    id="can_42:down:due1782986400000",
    canary_id="can_42",
    canary_name="nightly-backup @everyone",
    status="down",
    reason="missed",
    at=1_782_986_400.25,
    last_checkin_at=1_782_900_000.0,
    message="disk <full>",
)
UP = Flip(
    id="can_42:up:0190",
    canary_id="can_42",
    canary_name="nightly-backup @everyone",
    status="up",
    reason="checkin",
    at=1_782_986_500.0,
)
KEY = "R0UT1NGKEY0123456789abcdef012345"


def sent(config: ChannelConfig, *flips: Flip) -> list[DeliveryAttempt]:
    async def go() -> list[DeliveryAttempt]:
        clock = itertools.count(1000)
        async with http_session() as http:
            attempts = []
            for flip in flips:
                attempts += await deliver(config, "chn_1", flip, http, now=lambda: next(clock))
            return attempts

    return asyncio.run(go())


def both(config: ChannelConfig, receiver: HttpReceiver) -> tuple[ReceivedRequest, ReceivedRequest]:
    attempts = sent(config, DOWN, UP)
    assert [a.ok for a in attempts] == [True, True], attempts
    down, up = receiver.requests
    assert down.headers["content-type"] == "application/json"
    assert down.headers["x-coalmine-event"] == "canary.down"
    return down, up


@pytest.fixture()
def receiver() -> Any:
    with HttpReceiver() as running:
        yield running


def test_discord_gets_content_and_an_embed_and_pings_no_one(receiver: HttpReceiver) -> None:
    down, up = both(DiscordConfig(url=receiver.url("/api/webhooks/1/tok")), receiver)
    assert down.path == "/api/webhooks/1/tok"
    body = down.json()
    assert body["content"] == "nightly-backup @everyone is DOWN"
    assert body["allowed_mentions"] == {"parse": []}
    (embed,) = body["embeds"]
    assert embed["title"] == body["content"] and embed["color"] == 0xC0392B
    assert "disk <full>" in embed["description"]
    assert embed["timestamp"] == "2026-07-02T10:00:00.250Z"
    assert up.json()["embeds"][0]["color"] == 0x27AE60


def test_teams_gets_an_adaptive_card(receiver: HttpReceiver) -> None:
    down, _ = both(TeamsConfig(url=receiver.url("/workflows/abc/triggers/manual")), receiver)
    body = down.json()
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, text = card["body"]
    assert title["text"] == "nightly-backup @everyone is DOWN" and title["type"] == "TextBlock"
    assert "missed its check-in" in text["text"]


def test_pagerduty_triggers_on_down_and_resolves_the_same_incident_on_up(
    receiver: HttpReceiver,
) -> None:
    receiver.default = Reply(202, body=b'{"status":"success","message":"Event processed"}')
    config = PagerDutyConfig(routing_key=KEY, url=receiver.url("/v2/enqueue"))
    down, up = both(config, receiver)
    assert down.path == up.path == "/v2/enqueue"
    trigger = down.json()
    assert trigger["routing_key"] == KEY
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "coalmine-can_42"
    payload = trigger["payload"]
    assert payload["summary"] == "nightly-backup @everyone is DOWN"
    assert (payload["source"], payload["severity"]) == ("Coalmine", "critical")
    assert payload["timestamp"] == "2026-07-02T10:00:00.250Z"
    assert up.json() == {
        "routing_key": KEY,
        "event_action": "resolve",
        "dedup_key": "coalmine-can_42",
    }


def test_opsgenie_creates_then_closes_the_alert_by_alias(receiver: HttpReceiver) -> None:
    receiver.default = Reply(202, body=b'{"result":"Request will be processed"}')
    config = OpsgenieConfig(api_key="0psg3n13-k3y-0000", url=receiver.url(), priority="P2")
    down, up = both(config, receiver)
    assert down.path == "/v2/alerts"
    assert down.headers["authorization"] == "GenieKey 0psg3n13-k3y-0000"
    created = down.json()
    assert created["alias"] == "coalmine-can_42"
    assert created["message"] == "nightly-backup @everyone is DOWN"
    assert created["priority"] == "P2" and created["source"] == "Coalmine"
    assert "disk <full>" in created["description"]
    assert up.path == "/v2/alerts/coalmine-can_42/close?identifierType=alias"
    assert up.headers["authorization"] == "GenieKey 0psg3n13-k3y-0000"
    assert up.json()["source"] == "Coalmine"


def test_ntfy_gets_a_json_publish_with_a_token(receiver: HttpReceiver) -> None:
    config = NtfyConfig(topic="ops-alerts", url=receiver.url(), token="tk_0123456789")
    down, up = both(config, receiver)
    assert down.path == "/"
    assert down.headers["authorization"] == "Bearer tk_0123456789"
    body = down.json()
    assert body["topic"] == "ops-alerts"
    assert body["title"] == "nightly-backup @everyone is DOWN"
    assert (body["priority"], body["tags"]) == (4, ["rotating_light"])
    assert "missed its check-in" in body["message"]
    assert (up.json()["priority"], up.json()["tags"]) == (3, ["white_check_mark"])


def test_telegram_gets_send_message_in_plain_text(receiver: HttpReceiver) -> None:
    receiver.default = Reply(200, body=b'{"ok":true,"result":{}}')
    config = TelegramConfig(bot_token="123456:ABC-DEF", chat_id="-100200300", url=receiver.url())
    down, _ = both(config, receiver)
    assert down.path == "/bot123456:ABC-DEF/sendMessage"
    body = down.json()
    assert body["chat_id"] == "-100200300"
    assert body["text"].startswith("nightly-backup @everyone is DOWN\n\n")
    assert "parse_mode" not in body


def test_apprise_gets_title_body_and_type(receiver: HttpReceiver) -> None:
    config = AppriseConfig(url=receiver.url("/notify/apprise"), tag="ops")
    down, up = both(config, receiver)
    assert down.path == "/notify/apprise"
    body = down.json()
    assert (body["title"], body["type"], body["format"], body["tag"]) == (
        "nightly-backup @everyone is DOWN",
        "failure",
        "text",
        "ops",
    )
    assert "urls" not in body
    assert up.json()["type"] == "success"


def test_a_failed_service_call_never_reveals_its_key(receiver: HttpReceiver) -> None:
    receiver.default = Reply(400, body=b"bad")
    url = receiver.url()
    [attempt] = sent(TelegramConfig(bot_token="123456:SECRETTOKEN", chat_id="1", url=url), DOWN)
    assert (attempt.ok, attempt.detail) == (False, "HTTP 400")
    with HttpReceiver() as closed:
        gone = closed.url()
    config = PagerDutyConfig(routing_key=KEY, url=gone, max_attempts=1)
    [attempt] = sent(config, DOWN)
    assert not attempt.ok and KEY not in attempt.detail


def test_the_cli_creates_each_kind_and_tests_it(stack: Stack, receiver: HttpReceiver) -> None:
    base = receiver.url()
    kinds = {
        "discord": ["--discord", receiver.url("/api/webhooks/9/t")],
        "teams": ["--teams", receiver.url("/workflows/x")],
        "pagerduty": ["--pagerduty", KEY, "--base-url", receiver.url("/v2/enqueue")],
        "opsgenie": ["--opsgenie", "gk-0000", "--base-url", base],
        "ntfy": ["--ntfy", "topic-a", "--base-url", base],
        "telegram": ["--telegram", "42", "--bot-token", "1:tok", "--base-url", base],
        "apprise": ["--apprise", receiver.url("/notify/k"), "--tag", "all"],
    }
    paths = []
    for kind, flags in kinds.items():
        made = coalmine(stack, "channels", "create", f"cli-{kind}", *flags, "--json")
        assert made.returncode == 0, made.stderr
        created = json.loads(made.stdout)
        assert created["kind"] == kind
        assert KEY not in made.stdout and "gk-0000" not in made.stdout
        tried = coalmine(stack, "channels", "test", created["id"])
        assert (tried.returncode, tried.stdout.strip()) == (0, "sent: HTTP 200"), tried.stderr
        paths.append(receiver.requests[-1].path)
    assert paths == [
        "/api/webhooks/9/t",
        "/workflows/x",
        "/v2/enqueue",
        "/v2/alerts",
        "/",
        "/bot1:tok/sendMessage",
        "/notify/k",
    ]
    tests = [request.headers["x-coalmine-event"] for request in receiver.requests]
    assert tests == ["channel.test"] * len(kinds)
