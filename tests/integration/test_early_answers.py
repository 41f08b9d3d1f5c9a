"""An answer given before the request's body was read (413 from Content-Length, 401 before
the body, a check-in's 400 at its cap) reaches blocking clients that are still sending the
body, every time: no EPIPE, no ECONNRESET (ingest_api.linger)."""

from __future__ import annotations

import http.client
import shutil
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ingest_api.checkin import CHECKIN_RAW_BODY_MAX_BYTES
from schemas.limits import MAX_BODY_BYTES
from tests.integration.harness import Stack

TRIES = 50
# Just over the cap (the answer comes while most of the body is still in flight), and a
# body four times the cap.
SIZES = (MAX_BODY_BYTES + 100_000, 4 * MAX_BODY_BYTES)
EVENTS = "/api/v1/events"


def body_of(size: int) -> bytes:
    return b'{"events":[' + b" " * size + b"]}"


def with_urllib(url: str, body: bytes, headers: dict[str, str]) -> int | str:
    """urllib asks for `Connection: close`: the server closes right after its answer."""
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:  # URLError wraps the socket error
        return repr(exc)


def with_http_client(url: str, body: bytes, headers: dict[str, str]) -> int | str:
    """http.client sends the whole body, then reads (keep-alive)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("POST", parts.path, body=body, headers=headers)
        return connection.getresponse().status
    except OSError as exc:
        return repr(exc)
    finally:
        connection.close()


def tally(send, url: str, body: bytes, headers: dict[str, str]) -> Counter:  # type: ignore[no-untyped-def]
    return Counter(send(url, body, headers) for _ in range(TRIES))


@pytest.mark.parametrize("send", [with_urllib, with_http_client], ids=["urllib", "http.client"])
@pytest.mark.parametrize("size", SIZES)
def test_a_too_large_body_always_reads_back_as_413(
    stack: Stack, ingest_key: str, send, size: int
) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/json"}
    assert tally(send, stack.url + EVENTS, body_of(size), headers) == {413: TRIES}


@pytest.mark.parametrize("send", [with_urllib, with_http_client], ids=["urllib", "http.client"])
def test_a_refused_key_with_a_body_still_coming_always_reads_back_as_401(
    stack: Stack, send
) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": "Bearer ch_live_" + "C" * 43, "Content-Type": "application/json"}
    assert tally(send, stack.url + EVENTS, body_of(SIZES[1]), headers) == {401: TRIES}


def test_a_check_in_body_over_its_cap_always_reads_back_as_400(stack: Stack) -> None:
    canary = stack.admin().post(
        "/api/v1/admin/canaries", json={"name": "linger", "interval_seconds": 3600}
    )
    url = f"{stack.url}/checkin/{canary.json()['token']}"
    # Past the cap on what a check-in reads at all (a longer body up to it is the message,
    # cut short: issue 18, item 7).
    body = b"message=" + b"x" * (2 * CHECKIN_RAW_BODY_MAX_BYTES)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert tally(with_urllib, url, body, headers) == {400: TRIES}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize(
    "expect", ["", "100-continue"], ids=["body-at-once", "expect-100-continue"]
)
def test_curl_always_reads_back_413(
    stack: Stack, ingest_key: str, tmp_path: Path, expect: str
) -> None:
    """curl sends bodies over 1 MB after `Expect: 100-continue`; without it (an empty
    header), at once."""
    payload = tmp_path / "body.json"
    payload.write_bytes(body_of(SIZES[1]))
    command = [
        "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30",
        "-H", f"Authorization: Bearer {ingest_key}", "-H", "Content-Type: application/json",
        "-H", f"Expect: {expect}", "--data-binary", f"@{payload}", stack.url + EVENTS,
    ]  # fmt: skip
    outcomes: Counter = Counter()
    for _ in range(TRIES):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        outcomes[result.stdout if result.returncode == 0 else result.stderr.strip()] += 1
    assert outcomes == {"413": TRIES}
