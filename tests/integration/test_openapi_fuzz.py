"""Every operation of the HTTP API's OpenAPI description, fuzzed by schemathesis (valid and
invalid inputs generated from the schema) with the admin token, with an ingest key and with
no credentials: never a 5xx. On a stack of its own, since it creates keys, canaries and rules
at random. The check-in routes are in the schema too (ingest_api.openapi), with random tokens;
hypothesis fuzzes their parsing in tests/unit/test_hostile_parsing.py and
tests/integration/test_hostile_http.py sends them hostile bodies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.harness import Stack

EXAMPLES_PER_OPERATION = 40


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: object, value: object) -> bytes:
    """The bulk lane's body: generated values as lines (strings as they are, else JSON)."""
    import json

    items = value if isinstance(value, list) else [value]
    return b"".join(
        (v if isinstance(v, str) else json.dumps(v)).encode("utf-8", "replace") + b"\n"
        for v in items
    )


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("fuzz"))
    try:
        yield stack.start_all()
    finally:
        stack.stop()


def test_no_operation_answers_a_5xx_whatever_it_is_sent(fuzzed: Stack) -> None:
    raw = fuzzed.http().get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    ingest_key = fuzzed.create_key("fuzz")["key"]
    credentials = {
        "admin": {"Authorization": f"Bearer {fuzzed.settings.admin_token}"},
        "ingest key": {"Authorization": f"Bearer {ingest_key}"},
        "none": {},
    }
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(op.path == "/api/v1/events" for op in operations)
    assert any(op.path.startswith("/api/v1/admin/routes") for op in operations)
    assert any(op.path == "/checkin/{token}" for op in operations)
    server_errors: list[str] = []
    statuses: dict[int, int] = {}
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=operation.as_strategy(),
            who=st.sampled_from(["admin", "admin", "ingest key", "none"]),
        )
        def fuzz(case: schemathesis.Case, who: str) -> None:
            response = case.call(base_url=fuzzed.url, headers=credentials[who], timeout=15)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                server_errors.append(
                    f"{who}: {case.method} {case.formatted_path} -> {response.status_code} {response.text[:200]}"
                )

        fuzz()
    assert not server_errors, "\n".join(server_errors[:20])
    print(f"{len(operations)} operations, answers by status: {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= 5 * len(operations)
    assert {200, 400, 401} <= set(statuses)  # it got past auth, and was refused too
    assert (
        fuzzed.http(ingest_key)
        .post("/api/v1/events", json={"events": [{"type": "event", "name": "after.fuzz"}]})
        .status_code
        == 202
    )


def test_the_schema_is_served_and_valid(fuzzed: Stack) -> None:
    schemathesis.openapi.from_dict(fuzzed.http().get("/openapi.json").json())  # raises if invalid
