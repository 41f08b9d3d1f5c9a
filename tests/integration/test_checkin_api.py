"""GET/HEAD/POST /checkin/<token> (and /start, /fail) against the running stack, case by case
from specs/checkin-api.txt; then what was stored, read back through the history query."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from ingest_api.checkin import CHECKIN_BODY_MAX_BYTES, CHECKIN_RAW_BODY_MAX_BYTES
from schemas.canaries import CHECKIN_MESSAGE_MAX_CHARS
from tests.conftest import wait_for
from tests.integration.harness import Stack

CANARIES = "/api/v1/admin/canaries"
HISTORY = "/api/v1/query/canary_history"
RECEIVED = {"status": "success", "message": "Check-in received"}
INVALID_TOKEN = {"status": "error", "message": "Invalid token"}


@pytest.fixture()
def canary(stack: Stack) -> dict[str, Any]:
    # A long interval: nothing here should go down while the tests run.
    body = {
        "name": f"checkin-{uuid.uuid4().hex[:8]}",
        "interval_seconds": 3600,
        "grace_seconds": 60,
    }
    response = stack.admin().post(CANARIES, json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture()
def client(stack: Stack) -> httpx.Client:
    return stack.http()


def history(stack: Stack, canary_id: str, **params: str) -> dict[str, Any]:
    response = stack.admin().get(HISTORY, params={"canary_id": canary_id, **params})
    assert response.status_code == 200, response.text
    return response.json()


def stored_checkins(
    stack: Stack, canary_id: str, count: int, **params: str
) -> list[dict[str, Any]]:
    """The canary's stored check-ins, oldest first, once `count` of them are in ClickHouse."""
    found = wait_for(
        lambda: (
            (rows := history(stack, canary_id, **params)["checkins"])
            and len(rows) >= count
            and rows
        ),
        30,
        f"{count} check-in(s) of {canary_id} stored",
    )
    return sorted(found, key=lambda row: row["at"])


def assert_error_shape(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "message"} and body["status"] == "error"
    assert isinstance(body["message"], str) and body["message"]


# --- success ---------------------------------------------------------------------------------
def test_it_answers_a_plain_get_exactly_as_the_spec_shows(
    client: httpx.Client, canary: dict[str, Any]
) -> None:
    response = client.get(f"/checkin/{canary['token']}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == RECEIVED  # no received_message key without a message


def test_it_answers_the_checkin_path_it_was_given(
    client: httpx.Client, canary: dict[str, Any]
) -> None:
    assert client.get(canary["checkin_path"]).json() == RECEIVED


def test_it_echoes_a_get_message(client: httpx.Client, canary: dict[str, Any]) -> None:
    response = client.get(
        f"/checkin/{canary['token']}", params={"message": "Task completed successfully"}
    )
    assert response.status_code == 200
    assert response.json() == {**RECEIVED, "received_message": "Task completed successfully"}


def test_it_echoes_a_form_message(client: httpx.Client, canary: dict[str, Any]) -> None:
    response = client.post(
        f"/checkin/{canary['token']}",
        content=b"message=Processed+1234+records+in+5.2+seconds",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert response.json() == {
        **RECEIVED,
        "received_message": "Processed 1234 records in 5.2 seconds",
    }


def test_it_echoes_a_json_message(client: httpx.Client, canary: dict[str, Any]) -> None:
    message = "Database backup completed - 2.3GB backed up"
    response = client.post(f"/checkin/{canary['token']}", json={"message": message})
    assert response.status_code == 200
    assert response.json() == {**RECEIVED, "received_message": message}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-content-type"),
        pytest.param({"Content-Type": "application/json"}, id="json"),
        pytest.param({"Content-Type": "application/x-www-form-urlencoded"}, id="form"),
    ],
)
def test_it_accepts_a_post_with_an_empty_body(
    client: httpx.Client, canary: dict[str, Any], headers: dict[str, str]
) -> None:
    response = client.post(f"/checkin/{canary['token']}", content=b"", headers=headers)
    assert response.status_code == 200
    assert response.json() == RECEIVED


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"", "", id="no-body"),
        pytest.param(b"other=1", "application/x-www-form-urlencoded", id="form-without-message"),
        pytest.param(
            b'{"other": 1}',
            "application/json",
            id="json-without-message",
        ),
    ],
)
def test_it_takes_a_post_message_from_the_query_string_when_the_body_has_none(
    client: httpx.Client, canary: dict[str, Any], body: bytes, content_type: str
) -> None:
    response = client.post(
        f"/checkin/{canary['token']}",
        params={"message": "from the query"},
        content=body,
        headers={"Content-Type": content_type} if content_type else {},
    )
    assert response.status_code == 200
    assert response.json() == {**RECEIVED, "received_message": "from the query"}


def test_it_answers_head_with_200_and_no_body(client: httpx.Client, canary: dict[str, Any]) -> None:
    response = client.head(f"/checkin/{canary['token']}")
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("signal", ["start", "fail"])
def test_it_answers_start_and_fail_in_the_same_shape(
    client: httpx.Client, canary: dict[str, Any], signal: str
) -> None:
    plain = client.post(f"/checkin/{canary['token']}/{signal}")
    assert plain.status_code == 200 and plain.json() == RECEIVED
    with_message = client.get(f"/checkin/{canary['token']}/{signal}", params={"message": "m"})
    assert with_message.status_code == 200
    assert with_message.json() == {**RECEIVED, "received_message": "m"}


def test_it_accepts_a_message_of_exactly_the_maximum_in_characters_not_bytes(
    client: httpx.Client, canary: dict[str, Any]
) -> None:
    message = "é" * CHECKIN_MESSAGE_MAX_CHARS  # twice as many bytes in UTF-8
    for response in (
        client.get(f"/checkin/{canary['token']}", params={"message": message}),
        client.post(f"/checkin/{canary['token']}", json={"message": message}),
        client.post(f"/checkin/{canary['token']}", data={"message": message}),
    ):
        assert response.status_code == 200, response.text
        assert response.json()["received_message"] == message


# --- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/checkin/{}", "/checkin/{}/start", "/checkin/{}/fail"])
def test_it_answers_404_invalid_token_for_an_unknown_token(client: httpx.Client, path: str) -> None:
    url = path.format("no-such-token-" + uuid.uuid4().hex)
    for response in (client.get(url), client.post(url, json={"message": "x"})):
        assert response.status_code == 404
        assert response.json() == INVALID_TOKEN
    head = client.head(url)
    assert head.status_code == 404 and head.content == b""


def test_it_answers_other_methods_with_405_and_the_allowed_ones(
    client: httpx.Client, canary: dict[str, Any]
) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        response = client.request(method, f"/checkin/{canary['token']}")
        assert response.status_code == 405
        assert response.json() == {"status": "error", "message": "Method not allowed"}
        assert response.headers["allow"] == "GET, HEAD, POST"


@pytest.mark.parametrize("suffix", ["/other", "/start/extra", "/fail/"])
def test_it_answers_404_for_other_paths_under_a_token(
    client: httpx.Client, canary: dict[str, Any], suffix: str
) -> None:
    response = client.get(f"/checkin/{canary['token']}{suffix}")
    assert response.status_code == 404
    assert response.json() == {"status": "error", "message": "Not found"}


def _too_long(client: httpx.Client, url: str) -> list[httpx.Response]:
    message = "m" * (CHECKIN_MESSAGE_MAX_CHARS + 1)
    return [
        client.get(url, params={"message": message}),
        client.post(url, json={"message": message}),
        client.post(url, data={"message": message}),
    ]


BAD_BODIES = [
    pytest.param(b'{"message": "unclosed', "application/json", id="malformed-json"),
    pytest.param(b'["a list"]', "application/json", id="json-not-an-object"),
    pytest.param(b'{"message": 42}', "application/json", id="json-message-not-a-string"),
    pytest.param(b'{"message": "caf\xe9"}', "application/json", id="json-invalid-utf8"),
    pytest.param(
        b'{"message": "' + b"m" * CHECKIN_BODY_MAX_BYTES + b'"}',
        "application/json",
        id="json-over-8kb",
    ),
    pytest.param(b"m" * (CHECKIN_RAW_BODY_MAX_BYTES + 1), "text/plain", id="over-the-raw-body-cap"),
]


# A raw body is the message (a job piping its output): any content type, cut at the limit,
# UTF-8 with replacement; never dropped.
RAW_BODIES = [
    pytest.param(b"message=hello", "text/plain", "message=hello", id="text-plain"),
    pytest.param(b"<message>hi</message>", "application/xml", "<message>hi</message>", id="xml"),
    pytest.param(
        b"message=caf\xe9", "application/x-www-form-urlencoded", "caf\ufffd", id="form-invalid-utf8"
    ),
    pytest.param(b'{"message":"x"}', "application/x-www-form-urlencoded", "x", id="curl-d-json"),
    pytest.param(b"rsync: 12 files\n", "", "rsync: 12 files\n", id="no-content-type"),
    pytest.param(
        b"other=1", "application/x-www-form-urlencoded", "other=1", id="form-without-message"
    ),
    pytest.param(
        b"m" * (CHECKIN_BODY_MAX_BYTES + 1),
        "application/x-www-form-urlencoded",
        "m" * CHECKIN_MESSAGE_MAX_CHARS,
        id="over-8kb",
    ),
    pytest.param(
        b"z" * 300_000, "text/plain", "z" * CHECKIN_MESSAGE_MAX_CHARS, id="300kb-of-output"
    ),
]


@pytest.mark.parametrize(("body", "content_type", "message"), RAW_BODIES)
def test_it_takes_a_raw_body_as_the_message_and_stores_it(
    stack: Stack,
    client: httpx.Client,
    canary: dict[str, Any],
    body: bytes,
    content_type: str,
    message: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(f"/checkin/{canary['token']}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {**RECEIVED, "received_message": message}
    rows = stored_checkins(stack, canary["id"], 1)
    assert [row["message"] for row in rows] == [message]


@pytest.mark.parametrize(("body", "content_type"), BAD_BODIES)
def test_it_refuses_a_malformed_body_in_the_error_shape(
    client: httpx.Client, canary: dict[str, Any], body: bytes, content_type: str
) -> None:
    response = client.post(
        f"/checkin/{canary['token']}", content=body, headers={"Content-Type": content_type}
    )
    assert_error_shape(response, 400)


def test_it_refuses_a_message_one_character_over_the_maximum(
    client: httpx.Client, canary: dict[str, Any]
) -> None:
    for response in _too_long(client, f"/checkin/{canary['token']}"):
        assert_error_shape(response, 400)
        assert str(CHECKIN_MESSAGE_MAX_CHARS) in response.json()["message"]


def test_it_answers_404_for_a_deleted_canarys_token(
    stack: Stack, client: httpx.Client, canary: dict[str, Any]
) -> None:
    assert client.get(f"/checkin/{canary['token']}").status_code == 200
    assert stack.admin().delete(f"{CANARIES}/{canary['id']}").status_code == 200
    for signal in ("", "/start", "/fail"):
        response = client.post(f"/checkin/{canary['token']}{signal}")
        assert response.status_code == 404
        assert response.json() == INVALID_TOKEN


# --- what is stored --------------------------------------------------------------------------
def test_it_stores_each_checkin_with_its_kind_and_message(
    stack: Stack, client: httpx.Client, canary: dict[str, Any]
) -> None:
    token = canary["token"]
    sent = [
        client.post(f"/checkin/{token}/start", json={"message": "begin"}),
        client.get(f"/checkin/{token}", params={"message": "via query"}),
        client.post(f"/checkin/{token}", data={"message": "via form"}),
        client.post(f"/checkin/{token}", json={"message": "via json"}),
        client.head(f"/checkin/{token}"),
        client.post(f"/checkin/{token}/fail"),
    ]
    assert [r.status_code for r in sent] == [200] * len(sent)

    rows = stored_checkins(stack, canary["id"], len(sent))

    assert [(row["kind"], row["message"]) for row in rows] == [
        ("start", "begin"),
        ("success", "via query"),
        ("success", "via form"),
        ("success", "via json"),
        ("success", ""),
        ("fail", ""),
    ]
    # The README's route for the same query answers the same.
    by_route = stack.admin().get(f"/api/v1/query/canaries/{canary['id']}/history")
    assert by_route.status_code == 200
    assert sorted(by_route.json()["checkins"], key=lambda row: row["at"]) == rows


def test_it_stores_nothing_for_a_refused_checkin(
    stack: Stack, client: httpx.Client, canary: dict[str, Any]
) -> None:
    token = canary["token"]
    assert all(r.status_code == 400 for r in _too_long(client, f"/checkin/{token}"))
    # A later good check-in proves the sink has gone past the point of the refused ones.
    assert client.get(f"/checkin/{token}", params={"message": "marker"}).status_code == 200
    rows = stored_checkins(stack, canary["id"], 1)
    assert [(row["kind"], row["message"]) for row in rows] == [("success", "marker")]


def flips(stack: Stack, canary_id: str) -> list[dict[str, Any]]:
    return history(stack, canary_id)["flips"]


def test_it_puts_a_canary_down_on_a_fail_sent_right_after_its_creation(
    stack: Stack, client: httpx.Client
) -> None:
    # Several canaries, so that the outcome does not hang on one race.
    created = []
    for _ in range(5):
        body = {"name": f"fail-at-once-{uuid.uuid4().hex[:8]}", "interval_seconds": 3600}
        response = stack.admin().post(CANARIES, json=body)
        assert response.status_code == 201
        created.append(response.json())
        assert client.post(f"/checkin/{created[-1]['token']}/fail").status_code == 200

    wait_for(
        lambda: all(
            [(f["status"], f["reason"]) for f in flips(stack, c["id"])] == [("down", "failed")]
            for c in created
        ),
        10,
        "a down/failed flip for every canary",
    )


def test_it_limits_the_history_to_from_and_to(
    stack: Stack, client: httpx.Client, canary: dict[str, Any]
) -> None:
    token = canary["token"]
    assert client.get(f"/checkin/{token}", params={"message": "before"}).status_code == 200
    # The server stamps check-ins; this clock is the same machine's. Leave a clear gap (more
    # than the stored millisecond precision) between the two, and split the range inside it.
    split = time.time() + 0.01
    wait_for(lambda: time.time() > split + 0.01, 1, "the clock to pass the split")
    assert client.get(f"/checkin/{token}", params={"message": "after"}).status_code == 200
    stored_checkins(stack, canary["id"], 2)

    def messages(**params: str) -> list[str]:
        return [row["message"] for row in history(stack, canary["id"], **params)["checkins"]]

    assert messages(**{"from": str(split)}) == ["after"]
    assert messages(to=str(split)) == ["before"]
    assert messages(**{"from": str(split - 3600), "to": str(split + 3600)}) == ["after", "before"]
    assert messages(**{"from": "-1h", "to": str(split)}) == ["before"]
    assert messages(to=str(split - 3600)) == []


def test_it_refuses_a_history_query_without_a_canary_or_with_a_bad_range(stack: Stack) -> None:
    admin = stack.admin()
    assert admin.get(HISTORY).status_code == 400
    assert admin.get(HISTORY, params={"canary_id": "can_x", "from": "soon"}).status_code == 400
    assert (
        admin.get(HISTORY, params={"canary_id": "can_x", "from": "now", "to": "-1d"}).status_code
        == 400
    )
    assert stack.http().get(HISTORY, params={"canary_id": "can_x"}).status_code == 401
