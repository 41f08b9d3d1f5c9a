"""Where a check-in's message comes from (ingest_api.checkin.checkin_message): the spec's
query, form and JSON forms, and any other body as the message itself, never dropped."""

from __future__ import annotations

import pytest

from ingest_api.checkin import CHECKIN_BODY_MAX_BYTES, FORM, BadCheckin, checkin_message
from schemas.canaries import CHECKIN_MESSAGE_MAX_CHARS


def post(body: bytes, content_type: str = "", query: dict[str, list[str]] | None = None,
         complete: bool = True) -> str | None:  # fmt: skip
    return checkin_message("POST", query or {}, content_type, body, complete)


def test_it_reads_curl_d_json_sent_without_a_content_type_as_json() -> None:
    # `curl -d '{"message":"x"}'` says application/x-www-form-urlencoded.
    assert post(b'{"message":"x"}', FORM) == "x"
    assert post(b'{"message":"x"}', "") == "x"


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=utf-8", "", FORM,
                                          "application/octet-stream", "application/xml"])  # fmt: skip
def test_it_takes_any_other_body_as_the_message(content_type: str) -> None:
    assert post(b"backup done: 2.3 GB\n", content_type) == "backup done: 2.3 GB\n"


def test_a_raw_body_wins_over_the_query_string_but_a_form_without_message_does_not() -> None:
    query = {"message": ["from the query"]}
    assert post(b"from the body", "text/plain", query) == "from the body"
    assert post(b"other=1", FORM, query) == "from the query"
    assert post(b"other=1", FORM) == "other=1"  # not dropped


def test_a_raw_body_is_cut_at_the_limit_and_read_as_utf8_with_replacement() -> None:
    assert post(b"x" * 5000, "text/plain") == "x" * CHECKIN_MESSAGE_MAX_CHARS
    assert post(b"caf\xe9 ok", "text/plain") == "caf\ufffd ok"
    assert post(b"message=caf\xe9", FORM) == "caf\ufffd"
    # Only the beginning of a large body was kept: still its message, cut.
    assert (
        post(b"y" * CHECKIN_BODY_MAX_BYTES, FORM, complete=False) == "y" * CHECKIN_MESSAGE_MAX_CHARS
    )


def test_a_json_object_without_message_is_kept_whole_unless_the_query_has_one() -> None:
    assert post(b'{"msg": "typo"}', "application/json") == '{"msg": "typo"}'
    assert post(b'{"msg": "typo"}', "application/json", {"message": ["q"]}) == "q"
    assert post(b'{"message": null}', "application/json") is None
    assert post(b'{"message": ""}', "application/json") is None


@pytest.mark.parametrize(
    "body", [b'{"message": "unclosed', b'["a list"]', b'{"message": 42}', b'{"message": "caf\xe9"}']
)
def test_a_declared_json_body_must_be_well_formed(body: bytes) -> None:
    with pytest.raises(BadCheckin):
        post(body, "application/json")


def test_the_specs_forms_still_refuse_a_message_over_the_limit() -> None:
    too_long = "m" * (CHECKIN_MESSAGE_MAX_CHARS + 1)
    for attempt in (
        lambda: checkin_message("GET", {"message": [too_long]}, "", b""),
        lambda: post(f"message={too_long}".encode(), FORM),
        lambda: post(f'{{"message": "{too_long}"}}'.encode(), "application/json"),
    ):
        with pytest.raises(BadCheckin, match=str(CHECKIN_MESSAGE_MAX_CHARS)):
            attempt()


def test_an_empty_or_blank_body_is_no_message() -> None:
    assert post(b"", "text/plain") is None
    assert post(b"  \n", "text/plain") is None
    assert post(b"", "", {"message": ["q"]}) == "q"
