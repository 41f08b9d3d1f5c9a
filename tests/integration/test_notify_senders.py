"""runtime.notify_senders.deliver against real local receivers: an HTTP server for webhooks
and Slack, aiosmtpd for e-mail. Waits between tries go to a recording `sleep`, so the retry
schedule is asserted exactly and the tests do not wait it out."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import ssl
from pathlib import Path

import httpx
import pytest

from domain.notification_texts import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    slack_body,
    webhook_body,
)
from runtime.notify_senders import DETAIL_MAX_CHARS, deliver, http_session, redact
from schemas.canaries import (
    ChannelConfig,
    DeliveryAttempt,
    EmailConfig,
    Flip,
    SlackConfig,
    WebhookConfig,
)
from tests.integration.receivers import (
    HANG,
    HttpReceiver,
    Reply,
    SmtpReceiver,
    openssl_available,
    self_signed_tls,
)

SECRET = "whsec_7c1f9e0b5d2a4e68"
PASSWORD = "correct horse battery staple"
URL_TOKEN = "qs_token_93b1d4"
CHANNEL = "chan_1"
DOWN = Flip(
    id="can_42:down:due1782986400000",
    canary_id="can_42",
    canary_name="nightly-backup",
    status="down",
    reason="missed",
    at=1_782_986_400.25,
    last_checkin_at=1_782_900_000.0,
)


class Run:
    """One deliver() call with a counting clock and a sleep that only records."""

    def __init__(self, config: ChannelConfig, flip: Flip = DOWN, tls: ssl.SSLContext | None = None):
        self.delays: list[float] = []
        clock = itertools.count(1000)

        async def record(seconds: float) -> None:
            self.delays.append(seconds)

        async def go() -> list[DeliveryAttempt]:
            async with http_session() as http:
                return await deliver(
                    config,
                    CHANNEL,
                    flip,
                    http,
                    now=lambda: float(next(clock)),
                    sleep=record,
                    tls=tls,
                )

        self.attempts = asyncio.run(go())

    @property
    def oks(self) -> list[bool]:
        return [a.ok for a in self.attempts]

    @property
    def details(self) -> list[str]:
        return [a.detail for a in self.attempts]


def no_secret_in(attempts: list[DeliveryAttempt], *secrets: str) -> bool:
    return not any(s in a.detail for a in attempts for s in secrets)


# --- webhook ---------------------------------------------------------------------------------


def test_it_posts_a_signed_webhook_once() -> None:
    with HttpReceiver() as hook:
        run = Run(WebhookConfig(url=hook.url("/hooks/coalmine"), secret=SECRET))
        (request,) = hook.requests

    assert run.attempts == [
        DeliveryAttempt(DOWN.id, CHANNEL, "webhook", 1, 1000.0, True, "HTTP 200")
    ]
    assert run.delays == []
    assert (request.method, request.path) == ("POST", "/hooks/coalmine")
    assert request.headers["content-type"] == "application/json"
    assert request.headers[EVENT_HEADER.lower()] == "canary.down"
    assert request.headers[DELIVERY_HEADER.lower()] == DOWN.id
    assert request.body == webhook_body(DOWN)
    assert request.json()["canary"] == {"id": "can_42", "name": "nightly-backup"}
    # What a receiver does: recompute over the raw body with the shared secret.
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers[SIGNATURE_HEADER.lower()], expected)


def test_it_retries_after_server_errors_with_backoff_and_records_each_try() -> None:
    with HttpReceiver() as hook:
        hook.fail_first(2)
        run = Run(WebhookConfig(url=hook.url(), secret=SECRET))
        requests = hook.requests

    assert [(a.attempt, a.at, a.ok, a.detail) for a in run.attempts] == [
        (1, 1000.0, False, "HTTP 500"),
        (2, 1001.0, False, "HTTP 500"),
        (3, 1002.0, True, "HTTP 200"),
    ]
    assert run.delays == [0.5, 1.0]
    # The same body and delivery id every time: receivers de-duplicate on X-Coalmine-Delivery.
    assert len({r.body for r in requests}) == 1
    assert {r.headers[DELIVERY_HEADER.lower()] for r in requests} == {DOWN.id}


def test_it_gives_up_after_max_attempts() -> None:
    with HttpReceiver(default=503) as hook:
        run = Run(WebhookConfig(url=hook.url(), secret=SECRET, max_attempts=4))
        assert len(hook.requests) == 4

    assert run.oks == [False] * 4
    assert run.details == ["HTTP 503"] * 4
    assert run.delays == [0.5, 1.0, 2.0]  # no wait after the last try


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_it_does_not_retry_a_client_error(status: int) -> None:
    with HttpReceiver(default=status) as hook:
        run = Run(WebhookConfig(url=hook.url(), secret=SECRET))
        assert len(hook.requests) == 1

    assert run.details == [f"HTTP {status}"]
    assert run.delays == []


def test_it_does_not_follow_a_redirect() -> None:
    with HttpReceiver() as target, HttpReceiver(Reply(302, {"Location": target.url()})) as hook:
        run = Run(WebhookConfig(url=hook.url(), secret=SECRET))
        assert target.requests == []

    assert run.details == ["HTTP 302"]


def test_it_retries_408_and_429_and_honours_retry_after() -> None:
    with HttpReceiver() as hook:
        hook.queue(408, Reply(429, {"Retry-After": "7"}))
        run = Run(WebhookConfig(url=hook.url(), secret=SECRET))

    assert run.details == ["HTTP 408", "HTTP 429", "HTTP 200"]
    assert run.delays == [0.5, 7.0]


def test_it_records_a_receiver_that_never_answers_as_a_failed_try() -> None:
    with HttpReceiver() as hook:
        hook.queue(HANG)
        run = Run(WebhookConfig(url=hook.url(), secret=SECRET, timeout_s=0.3))

    assert run.oks == [False, True]
    assert run.details[0].startswith("Timeout")
    assert run.delays == [0.5]


def test_it_retries_when_nothing_listens_and_never_reveals_the_url_or_secret() -> None:
    with HttpReceiver() as hook:
        url = hook.url(f"/hooks?token={URL_TOKEN}")
    # The receiver is closed: its port refuses connections.
    run = Run(WebhookConfig(url=url, secret=SECRET, max_attempts=3))

    assert run.oks == [False] * 3
    assert all(d.startswith("ClientConnectorError") for d in run.details)
    assert no_secret_in(run.attempts, SECRET, URL_TOKEN, url)


def test_it_does_not_retry_a_url_it_cannot_send_to() -> None:
    run = Run(WebhookConfig(url=f"ftp://example.com/x?token={URL_TOKEN}", secret=SECRET))

    assert run.oks == [False]
    assert run.details[0].startswith("NonHttpUrlClientError")
    assert no_secret_in(run.attempts, URL_TOKEN)


def test_it_redacts_secrets_from_any_error_text() -> None:
    url = f"https://user:pw123456@hooks.example.com/services/T0/B0/XXXXSECRET?token={URL_TOKEN}"
    text = f"failed {url} / {URL_TOKEN} / /services/T0/B0/XXXXSECRET / pw123456 / {SECRET}"
    in_url = (url, URL_TOKEN, "XXXXSECRET", "pw123456")
    for config, secrets in [
        (WebhookConfig(url=url, secret=SECRET), (*in_url, SECRET)),
        (SlackConfig(url=url), in_url),
    ]:
        redacted = redact(text, config)
        assert redacted.startswith("failed [redacted]")
        assert not [secret for secret in secrets if secret in redacted]
    mail = EmailConfig(to=["a@example.com"], host="localhost", password=PASSWORD)
    assert redact(f"echoed {PASSWORD}", mail) == "echoed [redacted]"
    assert len(redact("x" * 1000, mail)) == DETAIL_MAX_CHARS


# --- Slack -----------------------------------------------------------------------------------


def test_it_posts_the_slack_message() -> None:
    with HttpReceiver() as slack:
        run = Run(SlackConfig(url=slack.url("/services/T000/B000/XXXXSECRET")))
        (request,) = slack.requests

    assert run.attempts == [DeliveryAttempt(DOWN.id, CHANNEL, "slack", 1, 1000.0, True, "HTTP 200")]
    assert (request.method, request.path) == ("POST", "/services/T000/B000/XXXXSECRET")
    assert request.headers["content-type"] == "application/json"
    assert request.body == slack_body(DOWN)
    body = request.json()
    assert body["text"].startswith(":red_circle: *nightly-backup* is DOWN — missed its check-in")
    assert body["blocks"][0]["text"]["text"] == body["text"]


def test_it_keeps_the_slack_url_out_of_failure_details() -> None:
    with HttpReceiver() as slack:
        url = slack.url("/services/T000/B000/XXXXSECRET")
    run = Run(SlackConfig(url=url, max_attempts=1))

    assert run.oks == [False]
    assert no_secret_in(run.attempts, url, "XXXXSECRET")


# --- e-mail ----------------------------------------------------------------------------------


def mail_config(smtp: SmtpReceiver, **options: object) -> EmailConfig:
    defaults: dict[str, object] = {
        "to": ["ops@example.com", "oncall@example.com"],
        "host": smtp.host,
        "port": smtp.port,
        "starttls": False,
        "sender": "alerts@example.com",
        "timeout_s": 5.0,
    }
    return EmailConfig(**{**defaults, **options})  # type: ignore[arg-type]


def test_it_emails_a_plain_and_an_html_part() -> None:
    flip = Flip(
        **{**{f: getattr(DOWN, f) for f in DOWN.__struct_fields__}, "message": "<script>x</script>"}
    )
    with SmtpReceiver() as smtp:
        run = Run(mail_config(smtp), flip)
        (mail,) = smtp.wait_for_mails(1)

    assert run.attempts == [DeliveryAttempt(DOWN.id, CHANNEL, "email", 1, 1000.0, True, "accepted")]
    assert mail.mail_from == "alerts@example.com"
    assert mail.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    assert mail.message["Subject"] == "[Coalmine] nightly-backup is DOWN"
    assert mail.message["To"] == "ops@example.com, oncall@example.com"
    assert mail.part("text/plain").startswith("nightly-backup is DOWN — missed its check-in")
    assert "&lt;script&gt;x&lt;/script&gt;" in mail.part("text/html")
    assert "<script>" not in mail.part("text/html")
    assert (mail.tls, mail.login) == (False, None)


def test_it_logs_in_when_given_a_username() -> None:
    with SmtpReceiver(users={"alice": PASSWORD}) as smtp:
        run = Run(mail_config(smtp, username="alice", password=PASSWORD))
        (mail,) = smtp.wait_for_mails(1)

    assert run.oks == [True]
    assert mail.login == "alice"


def test_it_does_not_retry_refused_credentials_nor_reveal_the_password() -> None:
    with SmtpReceiver(users={"alice": "another password"}) as smtp:
        run = Run(mail_config(smtp, username="alice", password=PASSWORD))
        assert smtp.mails == []

    assert run.oks == [False]
    assert run.details[0].startswith("SMTPAuthenticationError: (535")
    assert no_secret_in(run.attempts, PASSWORD)


def test_it_refuses_to_send_without_starttls_when_starttls_is_required() -> None:
    with SmtpReceiver(users={"alice": PASSWORD}) as smtp:
        run = Run(mail_config(smtp, starttls=True, username="alice", password=PASSWORD))
        assert smtp.mails == []

    assert run.oks == [False]  # not retried: the server will not grow STARTTLS
    assert run.details[0].startswith("SMTPNotSupportedError")


def test_it_retries_an_smtp_server_that_is_down() -> None:
    with SmtpReceiver() as smtp:
        config = mail_config(smtp, max_attempts=2)
    run = Run(config)

    assert run.oks == [False, False]
    assert run.details[0].startswith("ConnectionRefusedError")
    assert run.delays == [0.5]


needs_openssl = pytest.mark.skipif(
    not openssl_available(), reason="no openssl to make a certificate"
)


@needs_openssl
def test_it_upgrades_to_tls_before_logging_in(tmp_path: Path) -> None:
    tls = self_signed_tls(tmp_path)
    with SmtpReceiver(users={"alice": PASSWORD}, tls=tls.server()) as smtp:
        config = mail_config(smtp, starttls=True, username="alice", password=PASSWORD)
        run = Run(config, tls=tls.client())
        (mail,) = smtp.wait_for_mails(1)

    assert run.oks == [True]
    assert (mail.tls, mail.login) == (True, "alice")


@needs_openssl
def test_it_verifies_the_smtp_certificate_by_default(tmp_path: Path) -> None:
    tls = self_signed_tls(tmp_path)
    with SmtpReceiver(users={"alice": PASSWORD}, tls=tls.server()) as smtp:
        config = mail_config(
            smtp, starttls=True, username="alice", password=PASSWORD, max_attempts=1
        )
        run = Run(config)  # the system's CAs: a self-signed certificate is not trusted
        assert smtp.mails == []

    assert run.oks == [False]
    assert run.details[0].startswith("SSLCertVerificationError")


def test_receivers_record_what_end_to_end_tests_need() -> None:
    """The HTTP receiver is generic: any method, query strings, scripted answers in order."""
    with HttpReceiver() as receiver:
        receiver.queue(Reply(201, {"X-Test": "yes"}, b'{"ok":true}'))
        created = httpx.put(receiver.url("/a/b?c=d"), content=b"payload", headers={"X-Mine": "1"})
        plain = httpx.get(receiver.url("/"))
        put, get = receiver.wait_for_requests(2)

    assert (created.status_code, created.headers["X-Test"], created.json()) == (
        201,
        "yes",
        {"ok": True},
    )
    assert plain.status_code == 200
    assert (put.method, put.path, put.body, put.headers["x-mine"]) == (
        "PUT",
        "/a/b?c=d",
        b"payload",
        "1",
    )
    assert (get.method, get.body) == ("GET", b"")
