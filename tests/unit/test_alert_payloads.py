"""domain.alert_texts: error alerts and digests as webhook JSON, Slack message and
e-mail, with user text escaped for each medium."""

from __future__ import annotations

import json

from domain.alert_texts import change_text, rendered
from schemas.alerts import Digest, DigestError, DigestLine, ErrorAlert
from schemas.canaries import EmailConfig

MAIL = EmailConfig(to=["ops@example.com"], host="localhost", sender="cm@example.com")
ALERT = ErrorAlert(
    "alert:ab",
    "k1",
    "error",
    "db<timeout>",
    "line1\nline2 <!channel>",
    1_800_000_000.0,
    "ab",
    3600,
    [],
)
DIGEST = Digest(
    "digest:default:1800000000",
    None,
    [],
    "daily",
    "Europe/Paris",
    1_799_913_600.0,
    1_800_000_000.0,
    [
        DigestLine("event", "page.view", 150, 100, False),
        DigestLine("error", "db<timeout>", 4, 0, True),
    ],
    [DigestError("db<timeout>", 4, 1_799_990_000.0, "conn <refused> & gone")],
)


def test_change_against_the_period_before_reads_naturally() -> None:
    assert change_text(DigestLine("event", "a", 150, 100, False)) == "+50%"
    assert change_text(DigestLine("event", "a", 50, 100, False)) == "-50%"
    assert change_text(DigestLine("event", "a", 100, 100, False)) == "no change"
    assert change_text(DigestLine("event", "a", 3, 0, True)) == "new"
    assert change_text(DigestLine("event", "a", 3, 0, False)) == "was 0"
    assert change_text(DigestLine("event", "a", 0, 12, False)) == "went quiet (was 12)"


def test_an_error_alert_in_each_medium() -> None:
    notice = rendered(ALERT)
    assert (notice.id, notice.event) == ("alert:ab", "error.alert")
    body = json.loads(notice.webhook())
    assert (body["name"], body["message"], body["at"]) == (
        "db<timeout>",
        ALERT.message,
        "2027-01-15T08:00:00.000Z",
    )
    slack = json.loads(notice.slack())
    assert "db&lt;timeout&gt;" in slack["text"] and "<!channel>" not in json.dumps(slack)
    mail = notice.email(MAIL)
    assert (
        mail["Subject"] == "[Coalmine] error: db<timeout>"
        and mail["X-Coalmine-Delivery"] == "alert:ab"
    )
    assert "line2" in mail.get_body(("plain",)).get_content()
    assert "db&lt;timeout&gt;" in mail.get_body(("html",)).get_content()


def test_a_digest_in_each_medium() -> None:
    notice = rendered(DIGEST)
    assert (notice.id, notice.event, notice.at) == (DIGEST.id, "digest", DIGEST.end)
    body = json.loads(notice.webhook())
    assert [n["name"] for n in body["names"]] == ["page.view", "db<timeout>"]
    assert body["errors"][0]["last_message"] == "conn <refused> & gone"
    slack = json.loads(notice.slack())
    assert slack["text"].startswith("Daily digest 2027-01-14 09:00 CET – 2027-01-15 09:00 CET")
    assert "conn &lt;refused&gt; &amp; gone" in json.dumps(slack)
    mail = notice.email(MAIL)
    plain, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    assert (
        "page.view" in plain
        and "+50%" in plain
        and "new" in plain
        and "conn <refused> & gone" in plain
    )
    assert "conn &lt;refused&gt; &amp; gone" in html and "<table" in html
    assert "150 events, 4 errors, 1 new name" in plain
