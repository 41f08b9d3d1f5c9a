"""domain.channel_payloads without I/O: limits, incidents, severities, and the CLI's flags for
each service channel."""

from __future__ import annotations

import argparse
import json
import urllib.parse

from hypothesis import given
from hypothesis import strategies as st

from coalmine.channels_cli import add_channels_commands, channel_body
from domain.channel_payloads import (
    cut,
    opsgenie_request,
    pagerduty_body,
    path_segment,
    service_request,
)
from domain.notification_texts import rendered_flip, rendered_test
from schemas.canaries import (
    DiscordConfig,
    Flip,
    NtfyConfig,
    OpsgenieConfig,
    PagerDutyConfig,
    TelegramConfig,
)

DOWN = Flip("can_1:down:due1", "can_1", "x" * 300, "down", "missed", 1_700_000_000.0)


def test_it_cuts_to_a_limit_with_a_marker() -> None:
    assert cut("abc", 3) == "abc"
    assert cut("abcd", 3) == "ab…"
    body = json.loads(service_request(DiscordConfig(url="http://h/"), rendered_flip(DOWN)).body)
    assert len(body["embeds"][0]["title"]) == 256


@given(st.text(max_size=40))
def test_path_segments_are_encoded_as_urllib_does(text: str) -> None:
    assert path_segment(text) == urllib.parse.quote(text, safe="")


def test_a_test_notice_pages_no_one() -> None:
    notice = rendered_test("chn_1", "ops", "test:chn_1:ab", 1_700_000_000.0)
    trigger = json.loads(pagerduty_body(notice, PagerDutyConfig(routing_key="k")))
    assert (trigger["event_action"], trigger["payload"]["severity"]) == ("trigger", "info")
    assert trigger["dedup_key"] == "test:chn_1:ab"
    created = json.loads(opsgenie_request(notice, OpsgenieConfig(api_key="k")).body)
    assert created["priority"] == "P5"


def test_the_service_defaults_are_the_public_services() -> None:
    notice = rendered_flip(DOWN)
    assert service_request(PagerDutyConfig(routing_key="k"), notice).url == (
        "https://events.pagerduty.com/v2/enqueue"
    )
    assert service_request(OpsgenieConfig(api_key="k"), notice).url == (
        "https://api.opsgenie.com/v2/alerts"
    )
    assert service_request(NtfyConfig(topic="t"), notice).url == "https://ntfy.sh"
    assert service_request(TelegramConfig(bot_token="1:a", chat_id="2"), notice).url == (
        "https://api.telegram.org/bot1:a/sendMessage"
    )


def parsed(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_channels_commands(parser.add_subparsers(dest="command"), lambda p: None)
    return parser.parse_args(["channels", "create", "n", *flags])


def test_the_cli_makes_each_service_channel() -> None:
    assert channel_body(parsed("--discord", "https://d/x")) == {
        "name": "n", "kind": "discord", "url": "https://d/x",
    }  # fmt: skip
    assert channel_body(parsed("--pagerduty", "KEY", "--base-url", "http://pd")) == {
        "name": "n", "kind": "pagerduty", "routing_key": "KEY", "url": "http://pd",
    }  # fmt: skip
    assert channel_body(parsed("--ntfy", "t", "--token", "tk"))["token"] == "tk"
    assert channel_body(parsed("--apprise", "http://a/notify/k", "--tag", "ops")) == {
        "name": "n", "kind": "apprise", "url": "http://a/notify/k", "tag": "ops",
    }  # fmt: skip


def test_the_cli_wants_a_bot_token_for_telegram() -> None:
    try:
        channel_body(parsed("--telegram", "42"))
    except argparse.ArgumentTypeError as exc:
        assert "--bot-token" in str(exc)
    else:
        raise AssertionError("no error")
