"""The OpenAPI document is complete and valid (openapi-spec-validator), and /docs and /redoc
load everything from the service itself: they work offline."""

from __future__ import annotations

import re
from typing import Any

from openapi_spec_validator import validate

from ingest_api.openapi import QUERY_PARAMETERS
from tests.integration.harness import Stack


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in references(v)]
    if isinstance(node, list):
        return [r for v in node for r in references(v)]
    return []


def test_the_document_is_valid_and_defines_what_it_references(stack: Stack) -> None:
    document: dict[str, Any] = stack.http().get("/openapi.json").json()
    validate(document)  # raises on an invalid document
    # The validator does not follow every reference: each must name something defined.
    for ref in references(document):
        target: Any = document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
    schemas = document["components"]["schemas"]
    assert {"IngestRequest", "Event", "CheckinAnswer"} <= set(schemas)
    ingest = document["paths"]["/api/v1/events"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert ingest["schema"] == {"$ref": "#/components/schemas/IngestRequest"}
    events = schemas["IngestRequest"]["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (1, 100)
    query = document["paths"]["/api/v1/query/{name}"]["get"]
    documented = {(p["in"], p["name"]) for p in query["parameters"]}
    assert ("path", "name") in documented
    assert {("query", name) for name, _ in QUERY_PARAMETERS} <= documented
    for path in ("/checkin/{token}", "/checkin/{token}/start", "/checkin/{token}/fail"):
        assert set(document["paths"][path]) == {"get", "head", "post"}
    post = document["paths"]["/checkin/{token}"]["post"]
    assert {"application/json", "application/x-www-form-urlencoded", "text/plain"} == set(
        post["requestBody"]["content"]
    )


def test_the_docs_pages_load_nothing_from_elsewhere(stack: Stack) -> None:
    http = stack.http()
    for page in ("/docs", "/redoc"):
        response = http.get(page)
        assert response.status_code == 200
        html = response.text
        assert "http://" not in html and "https://" not in html, html
        assets = re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']""", html) + re.findall(
            r"url: '([^']+)'", html
        )
        assert assets
        for asset in assets:
            assert asset.startswith("/"), asset
            fetched = http.get(asset)
            assert fetched.status_code == 200 and fetched.content, asset
    # Swagger UI would otherwise show a badge from the public validator's server.
    assert '"validatorUrl": null' in http.get("/docs").text
