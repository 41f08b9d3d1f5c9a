"""Who may do what, and where secrets end up: every route group against every kind of
credential; raw API keys and check-in tokens in no log line and no ClickHouse row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.integration.harness import Stack, clickhouse_facts

BATCH = {"events": [{"type": "event", "name": "security.probe"}]}
# (method, path, body, the status each credential gets: admin, read key, ingest key, others)
ROUTES: list[tuple[str, str, Any, dict[str, int]]] = [
    ("POST", "/api/v1/events", BATCH, {"ingest": 202}),
    ("GET", "/api/v1/query/series?name=x&from=-1h&interval=1h", None, {"admin": 200, "read": 200}),
    ("GET", "/api/v1/query/top_names?from=-1h", None, {"admin": 200, "read": 200}),
    ("GET", "/api/v1/admin/keys", None, {"admin": 200}),
    ("POST", "/api/v1/admin/keys", {"name": "matrix"}, {"admin": 201}),
    ("GET", "/api/v1/admin/canaries", None, {"admin": 200}),
    (
        "POST",
        "/api/v1/admin/canaries",
        {"name": "matrix", "interval_seconds": 3600},
        {"admin": 201},
    ),
    ("GET", "/api/v1/admin/channels", None, {"admin": 200}),
    ("GET", "/api/v1/admin/routes", None, {"admin": 200}),
    (
        "POST",
        "/api/v1/admin/routes",
        {"type": "error", "name": "matrix.*", "mode": "silent"},
        {"admin": 201},
    ),
]
CREDENTIALS = (
    "admin",
    "read",
    "ingest",
    "revoked",
    "none",
    "wrong",
    "admin-lowercase-scheme",
    "admin-with-suffix",
)


@pytest.fixture(scope="module")
def tokens(stack: Stack) -> dict[str, str | None]:
    revoked = stack.create_key("matrix-revoked")
    assert stack.admin().delete(f"/api/v1/admin/keys/{revoked['id']}").status_code == 200
    admin = stack.settings.admin_token
    return {
        "admin": admin,
        "read": stack.create_key("matrix-read", scope="read")["key"],
        "ingest": stack.create_key("matrix-ingest")["key"],
        "revoked": revoked["key"],
        "none": None,
        "wrong": "ch_live_" + "A" * 43,
        "admin-lowercase-scheme": admin,  # sent as `bearer <token>` below
        "admin-with-suffix": admin + "x",
    }


@pytest.mark.parametrize("who", CREDENTIALS)
@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    ROUTES,
    ids=[f"{m} {p.split('?')[0]}" for m, p, _, _ in ROUTES],
)
def test_each_route_takes_only_its_credentials(
    stack: Stack,
    tokens: dict[str, str | None],
    who: str,
    method: str,
    path: str,
    body: Any,
    allowed: dict[str, int],
) -> None:
    token = tokens[who]
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if who == "admin-lowercase-scheme":
        headers = {"Authorization": f"bearer {token}"}
    if path == "/api/v1/admin/canaries" and method == "POST":
        body = {**body, "name": f"matrix-{who}"}  # canary names are unique
    response = stack.http().request(method, path, json=body, headers=headers)
    expected = allowed.get(who, 401)
    if who == "admin-lowercase-scheme":
        expected = allowed.get("admin", 401)  # the scheme in any case (RFC 9110)
    assert response.status_code == expected, (
        f"{who}: {method} {path} -> {response.status_code} {response.text[:200]}"
    )


def test_secrets_are_stored_hashed_and_never_logged(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    secrets: list[str] = [stack.settings.admin_token]
    try:
        stack.start_all()
        key = stack.create_key("secret-holder")
        read = stack.create_key("secret-reader", scope="read")
        secrets += [key["key"], read["key"]]
        canary = (
            stack.admin()
            .post("/api/v1/admin/canaries", json={"name": "secret", "interval_seconds": 3600})
            .json()
        )
        secrets.append(canary["token"])
        assert stack.http(key["key"]).post("/api/v1/events", json=BATCH).status_code == 202
        assert (
            stack.http().post(f"/checkin/{canary['token']}", data={"message": "hello"}).status_code
            == 200
        )
        assert (
            stack.http("ch_live_" + "B" * 43).post("/api/v1/events", json=BATCH).status_code == 401
        )
        assert stack.http().get("/checkin/not-a-real-token-but-looks-like-one").status_code == 404
        assert stack.admin().delete(f"/api/v1/admin/keys/{key['id']}").status_code == 200
        wait_for(lambda: stack.series_total("security.probe") == 1, 30, "the event stored")
        wait_for(
            lambda: (
                stack.admin()
                .get(f"/api/v1/query/canaries/{canary['id']}/history")
                .json()["checkins"]
            ),
            30,
            "the check-in stored",
        )
    finally:
        stack.stop()
    logs = "\n".join(path.read_text(errors="replace") for path in tmp_path.glob("*.log"))
    assert logs  # every process wrote its log
    for secret in secrets:
        assert secret not in logs, "a secret in the logs"
    tables = [row[0] for row in clickhouse_facts(tmp_path / "data", "SHOW TABLES")]
    assert {"api_keys", "events", "control"} <= set(tables), tables
    for table in tables:
        rows = clickhouse_facts(tmp_path / "data", f"SELECT * FROM `{table}`")
        text = repr(rows)
        for secret in secrets[1:]:  # the admin token is not stored at all
            assert secret not in text, f"a raw secret in ClickHouse table {table}"
