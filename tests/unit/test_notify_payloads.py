"""domain.notification_texts: webhook/Slack bodies, the signature, the e-mail and the retry
policy, from plain Flips."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.notification_texts import (
    BACKOFF_CAP_S,
    DELIVERY_HEADER,
    EVENT_HEADER,
    REASON_TEXT,
    backoff_s,
    email_message,
    retriable_status,
    retry_delay_s,
    signature,
    slack_body,
    webhook_body,
)
from schemas.canaries import EmailConfig, Flip

AT = 1_782_986_400.25  # 2026-07-02T10:00:00.250Z
LAST = 1_782_900_000.0  # 2026-07-01T10:00:00Z
DOWN = Flip(
    id="can_42:down:due1782986400000",
    canary_id="can_42",
    canary_name="nightly-backup",
    status="down",
    reason="missed",
    at=AT,
    last_checkin_at=LAST,
)
UP = Flip(
    id="can_42:up:0197c9d9e0f1",
    canary_id="can_42",
    canary_name="nightly-backup",
    status="up",
    reason="checkin",
    at=AT,
    last_checkin_at=AT,
    message="backup done: 2.3GB",
)
MAIL = EmailConfig(
    to=["ops@example.com", "oncall@example.com"],
    host="mail.example.com",
    sender="Coalmine <alerts@example.com>",
)
EVIL = "<script>alert('x')</script>"


def slack(flip: Flip) -> dict:
    return json.loads(slack_body(flip))


def with_(flip: Flip, **changes: object) -> Flip:
    fields = {f: getattr(flip, f) for f in flip.__struct_fields__}
    return Flip(**{**fields, **changes})  # type: ignore[arg-type]


# --- webhook ---------------------------------------------------------------------------------


def test_it_puts_the_whole_flip_in_the_webhook_body() -> None:
    assert json.loads(webhook_body(DOWN)) == {
        "event": "canary.down",
        "id": "can_42:down:due1782986400000",
        "canary": {"id": "can_42", "name": "nightly-backup"},
        "status": "down",
        "reason": "missed",
        "at": "2026-07-02T10:00:00.250Z",
        "last_checkin_at": "2026-07-01T10:00:00.000Z",
        "message": "",
    }


def test_it_names_an_up_flip_canary_up_and_keeps_its_message() -> None:
    body = json.loads(webhook_body(UP))
    assert (body["event"], body["status"], body["reason"]) == ("canary.up", "up", "checkin")
    assert body["message"] == "backup done: 2.3GB"


def test_it_sends_null_for_a_canary_that_never_checked_in() -> None:
    assert json.loads(webhook_body(with_(DOWN, last_checkin_at=None)))["last_checkin_at"] is None


def test_it_keeps_user_text_intact_in_json() -> None:
    flip = with_(DOWN, canary_name='bäckup "prod"\n', message=EVIL)
    body = json.loads(webhook_body(flip))
    assert (body["canary"]["name"], body["message"]) == ('bäckup "prod"\n', EVIL)


def test_it_signs_the_body_so_a_receiver_can_verify_it_with_hmac() -> None:
    body = webhook_body(DOWN)
    header = signature("whsec_abc", body)

    scheme, _, digest = header.partition("=")
    assert scheme == "sha256"
    expected = hmac.new(b"whsec_abc", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(digest, expected)


@given(st.text(min_size=1), st.text(min_size=1), st.binary(), st.binary())
def test_it_gives_a_different_signature_for_another_secret_or_body(
    secret: str, other_secret: str, body: bytes, other_body: bytes
) -> None:
    if secret != other_secret:
        assert signature(secret, body) != signature(other_secret, body)
    if body != other_body:
        assert signature(secret, body) != signature(secret, other_body)


# --- Slack -----------------------------------------------------------------------------------


def test_it_says_in_slack_which_canary_is_down_and_since_when() -> None:
    assert slack(DOWN)["text"] == (
        ":red_circle: *nightly-backup* is DOWN — missed its check-in"
        " (last check-in 2026-07-01T10:00:00Z)"
    )


def test_it_says_in_slack_when_a_canary_is_up_again() -> None:
    assert slack(UP)["text"] == (
        ":large_green_circle: *nightly-backup* is UP again — checked in at 2026-07-02T10:00:00Z"
    )


@pytest.mark.parametrize("reason", ["missed", "failed", "runtime_exceeded"])
def test_it_words_each_down_reason(reason: str) -> None:
    text = slack(with_(DOWN, reason=reason))["text"]
    assert f"is DOWN — {REASON_TEXT[reason]} (" in text  # type: ignore[index]


def test_it_says_when_a_canary_never_checked_in() -> None:
    assert slack(with_(DOWN, last_checkin_at=None))["text"].endswith("(no check-in yet)")


def test_it_gives_slack_blocks_with_the_text_and_the_message_quoted() -> None:
    body = slack(with_(DOWN, reason="failed", message="exit 3\ndisk full"))
    section, message, context = body["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}}
    assert message["text"]["text"] == "> exit 3\n> disk full"
    assert "`failed`" in context["elements"][0]["text"]


def test_it_stops_user_text_from_pinging_the_channel_in_slack() -> None:
    body = slack(with_(DOWN, canary_name="<!channel> backup", message="<!here> & <@U123>"))
    assert "*&lt;!channel&gt; backup*" in body["text"]
    assert "<!" not in slack_body(with_(DOWN, canary_name="<!channel>", message="<!here>")).decode()
    assert body["blocks"][1]["text"]["text"] == "> &lt;!here&gt; &amp; &lt;@U123&gt;"


# --- e-mail ----------------------------------------------------------------------------------


def test_it_addresses_the_email_and_says_the_status_in_the_subject() -> None:
    message = email_message(DOWN, MAIL)
    assert message["Subject"] == "[Coalmine] nightly-backup is DOWN"
    assert message["From"] == "Coalmine <alerts@example.com>"
    assert message["To"] == "ops@example.com, oncall@example.com"
    assert message[EVENT_HEADER] == "canary.down"
    assert message[DELIVERY_HEADER] == DOWN.id
    assert message["Message-ID"] == "<can_42.down.due1782986400000@example.com>"
    assert email_message(UP, MAIL)["Subject"] == "[Coalmine] nightly-backup is UP again"


def test_it_sends_a_plain_text_and_an_html_part() -> None:
    message = email_message(DOWN, MAIL)
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    rich = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    headline = "nightly-backup is DOWN — missed its check-in (last check-in 2026-07-01T10:00:00Z)"
    assert plain.startswith(headline + "\n")
    assert "Last check-in:" in plain and "2026-07-01T10:00:00Z" in plain
    assert "<strong" in rich and "nightly-backup" in rich and "2026-07-01T10:00:00Z" in rich


def test_it_escapes_user_text_in_the_html_part() -> None:
    message = email_message(with_(DOWN, canary_name=EVIL, message=f"output: {EVIL}"), MAIL)
    rich = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in rich
    assert rich.count("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;") == 2  # headline, message
    assert EVIL in plain  # plain text is shown as text: nothing to escape


def test_it_keeps_a_line_break_in_a_canary_name_out_of_the_headers() -> None:
    message = email_message(with_(DOWN, canary_name="backup\r\nBcc: victim@example.com"), MAIL)
    assert message["Subject"] == "[Coalmine] backup Bcc: victim@example.com is DOWN"
    assert message["Bcc"] is None
    headers, _, body = message.as_bytes().partition(b"\n\n")
    assert b"\nBcc:" not in headers
    assert b"\nBcc:" not in body  # nor a forged line in the text


# --- retry policy ----------------------------------------------------------------------------


def test_it_backs_off_exponentially_up_to_the_cap() -> None:
    assert [backoff_s(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff_s(10**6) == BACKOFF_CAP_S


@given(st.integers(min_value=1, max_value=10_000))
def test_it_never_waits_less_than_before_nor_more_than_the_cap(attempt: int) -> None:
    assert backoff_s(attempt) <= backoff_s(attempt + 1) <= BACKOFF_CAP_S


def test_it_refuses_attempt_numbers_below_one() -> None:
    with pytest.raises(ValueError):
        backoff_s(0)


@pytest.mark.parametrize(
    ("status", "retriable"),
    [
        (500, True),
        (502, True),
        (503, True),
        (408, True),
        (429, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (410, False),
        (301, False),
        (307, False),
    ],
)
def test_it_retries_only_what_may_succeed_later(status: int, retriable: bool) -> None:
    assert retriable_status(status) is retriable


def test_it_waits_longer_when_told_to_by_retry_after_but_not_past_the_cap() -> None:
    assert retry_delay_s(1, "7") == 7
    assert retry_delay_s(3, "1") == 2  # the backoff, when it is longer
    assert retry_delay_s(1, "3600") == BACKOFF_CAP_S
    assert retry_delay_s(1, "Wed, 21 Oct 2026 07:28:00 GMT") == 0.5
    assert retry_delay_s(2, None) == 1


def test_a_parents_alert_lists_the_dependents_down_with_it_everywhere() -> None:
    parent = with_(DOWN, dependents=["etl-load", "report <mail>"])
    body = json.loads(webhook_body(parent))
    assert body["dependents"] == ["etl-load", "report <mail>"]
    assert "dependents" not in json.loads(webhook_body(DOWN))
    assert "also down, depending on it: etl-load, report &lt;mail&gt;" in slack(parent)["text"]
    mail = email_message(parent, MAIL)
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Also down:" in plain and "etl-load, report <mail>" in plain
    assert "report &lt;mail&gt;" in html and "report <mail>" not in html
