"""HTTPS: `coalmine up --tls-cert/--tls-key` serves both contracts over a real TLS handshake
(a self-signed certificate made here with the openssl CLI), the CLI talks to it, and bad
certificate files are refused in one line before anything starts."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from coalmine.broker import free_port
from schemas.limits import MAX_BODY_BYTES
from tests.integration.up import Up

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the openssl CLI makes the test certificates"
)


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, its key, and another key."""
    root = tmp_path_factory.mktemp("certs")
    cert, key, other = root / "cert.pem", root / "key.pem", root / "other-key.pem"
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    )  # fmt: skip
    openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(other)
    )
    return {"cert": cert, "key": key, "other_key": other}


def coalmine(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COALMINE_")}
    return subprocess.run(
        [sys.executable, "-m", "coalmine", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**environ, **(env or {})},
    )


def test_both_contracts_over_https(tmp_path: Path, certs: dict[str, Path]) -> None:
    data, port = tmp_path / "data", free_port()
    up = Up(data, port, args=("--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"])))
    url = f"https://127.0.0.1:{port}"
    try:
        up.wait_ready()
        assert f"Coalmine is up at {url}" in up.lines
        # A real handshake, verified against the certificate.
        context = ssl.create_default_context(cafile=str(certs["cert"]))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
                assert dict(x[0] for x in tls.getpeercert()["subject"])["commonName"] == "localhost"
                tls.sendall(
                    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                assert tls.recv(65536).startswith(b"HTTP/1.1 200")
        with pytest.raises(httpx.ConnectError):  # an unknown certificate is not trusted...
            httpx.get(f"{url}/healthz")
        with pytest.raises(httpx.HTTPError):  # ...and nothing is served in clear
            httpx.get(f"http://127.0.0.1:{port}/healthz")

        # The CLI: the service's own settings (COALMINE_TLS_CERT) make it https and trusted;
        # a client elsewhere gives --url and --tls-ca.
        created = coalmine(
            "keys", "create", "over-tls", "--rate", "6000", "--burst", "1000", "--port", str(port),
            "--data-dir", str(data), "--json", env={"COALMINE_TLS_CERT": str(certs["cert"])},
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        key = json.loads(created.stdout)["key"]
        listed = coalmine(
            "keys",
            "list",
            "--json",
            "--url",
            url,
            "--tls-ca",
            str(certs["cert"]),
            "--data-dir",
            str(data),
        )
        assert listed.returncode == 0, listed.stderr
        assert [k["name"] for k in json.loads(listed.stdout)] == ["over-tls"]

        client = httpx.Client(
            base_url=url, verify=ssl.create_default_context(cafile=str(certs["cert"])), timeout=15
        )
        admin = {"Authorization": f"Bearer {up.admin_token}"}
        auth = {"Authorization": f"Bearer {key}"}
        # The ingest contract.
        batch = {
            "events": [
                {"type": "event", "name": "tls.ok", "value": 1},
                {"type": "error", "name": "tls.err", "message": "m"},
            ]
        }
        accepted = client.post("/api/v1/events", json=batch, headers=auth)
        assert (accepted.status_code, accepted.json()) == (202, {"accepted": 2})
        assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(
            accepted.headers
        )
        assert client.post("/api/v1/events", json=batch).status_code == 401
        invalid = client.post("/api/v1/events", json={"events": []}, headers=auth)
        assert invalid.status_code == 400 and "error" in invalid.json()
        # 413 answered early, read back over TLS too (ingest_api.linger).
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
        connection.request(
            "POST",
            "/api/v1/events",
            body=b"x" * (2 * MAX_BODY_BYTES),
            headers={**auth, "Connection": "close"},
        )
        assert connection.getresponse().status == 413
        connection.close()
        # The check-in contract.
        canary = client.post(
            "/api/v1/admin/canaries",
            json={"name": "tls-job", "interval_seconds": 3600},
            headers=admin,
        ).json()
        checkin = f"/checkin/{canary['token']}"
        assert client.get(checkin).json() == {"status": "success", "message": "Check-in received"}
        posted = client.post(checkin, data={"message": "backup done"})
        assert posted.status_code == 200 and posted.json()["received_message"] == "backup done"
        assert client.head(checkin).status_code == 200
        assert client.get(f"{checkin}/fail").status_code == 200
        assert client.get("/checkin/not-a-token").json() == {
            "status": "error",
            "message": "Invalid token",
        }
    finally:
        assert up.stop() == 0


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"cert": "missing.pem", "key": "key"}, "cannot read COALMINE_TLS_CERT"),
        ({"cert": "cert", "key": "other_key"}, "is not the private key of COALMINE_TLS_CERT"),
        ({"cert": "cert"}, "go together"),
        ({"cert": "key", "key": "key"}, "must be a PEM certificate chain"),
    ],
    ids=["unreadable", "mismatched", "cert-without-key", "not-a-certificate"],
)
@pytest.mark.parametrize("role", ["up", "api"])
def test_bad_certificate_files_are_refused_in_one_line(
    tmp_path: Path, certs: dict[str, Path], files: dict[str, str], message: str, role: str
) -> None:
    flags = []
    for flag, name in files.items():
        flags += [f"--tls-{flag}", str(certs.get(name, tmp_path / name))]
    result = coalmine(
        role, "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), *flags
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "data" / "store.sock").exists()  # refused before anything started
