"""The bulk lane and `coalmine import` against a running stack: per-line errors, gzip, limits,
the separate budget, history that is stored and rolled up but never alerts, and an interrupted
import resumed without losing or doubling an event."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coalmine.importer import ImportFailed, import_files
from tests.conftest import wait_for
from tests.integration.harness import Stack
from tests.integration.receivers import HttpReceiver, Reply
from tests.integration.test_cli import coalmine

BULK = "/api/v1/events/bulk"


def ndjson(name: str, n: int) -> bytes:
    return b"".join(
        b'{"type":"event","name":"%s","value":%d}\n' % (name.encode(), i) for i in range(n)
    )


def test_bulk_stores_the_valid_lines_and_reports_the_others(stack: Stack, ingest_key: str) -> None:
    name = f"bulk-{time.monotonic_ns()}"
    body = ndjson(name, 250) + b'{"type":"event"}\n{not json\n' + ndjson(name, 50)
    response = stack.http(ingest_key).post(BULK, content=body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["accepted"] == 300 and answer["rejected_count"] == 2
    assert [r["line"] for r in answer["rejected"]] == [251, 252]
    zipped = stack.http(ingest_key).post(
        BULK, content=gzip.compress(ndjson(name, 1000)), headers={"Content-Encoding": "gzip"}
    )
    assert zipped.status_code == 202 and zipped.json()["accepted"] == 1000
    wait_for(lambda: stack.series_total(name) == 1300, 60, "every accepted line stored")


def test_bulk_takes_events_of_the_largest_kind(stack: Stack, ingest_key: str) -> None:
    """100 of them would pass the producer's 1 MB request limit in one record."""
    name = f"bulk-big-{time.monotonic_ns()}"
    meta = json.dumps({"blob": "m" * 4_000})
    line = json.dumps(
        {"type": "error", "name": name, "message": "\U0001f600" * 2_000, "meta": json.loads(meta)},
        ensure_ascii=False,
    )
    body = (line + "\n").encode() * 300
    assert len(body) > 3_000_000
    response = stack.http(ingest_key).post(BULK, content=body)
    assert response.status_code == 202 and response.json()["accepted"] == 300, response.text
    wait_for(lambda: stack.series_total(name) == 300, 60, "every large event stored")


def test_bulk_refuses_what_is_too_big_or_unreadable(stack: Stack, ingest_key: str) -> None:
    client = stack.http(ingest_key)
    too_many = client.post(BULK, content=b'{"type":"event","name":"x"}\n' * 100_001)
    assert too_many.status_code == 413 and "100000" in too_many.json()["error"]
    bomb = gzip.compress(b" " * (51 * 1024 * 1024))
    assert client.post(BULK, content=bomb, headers={"Content-Encoding": "gzip"}).status_code == 413
    assert (
        client.post(BULK, content=b"not gzip", headers={"Content-Encoding": "gzip"}).status_code
        == 400
    )
    nothing = client.post(BULK, content=b"{nope\n")
    assert nothing.status_code == 400 and nothing.json()["rejected"][0]["line"] == 1
    assert stack.http().post(BULK, content=ndjson("x", 1)).status_code == 401


def test_the_bulk_lane_has_its_own_budget_and_its_history_never_alerts(tmp_path: Path) -> None:
    """One stack of its own (a small bulk budget, a webhook channel): the budget, then a
    backfill of errors that is stored and rolled up but raises no alert."""
    stack = Stack(tmp_path, bulk_burst=500, bulk_rate_per_hour=3600)
    try:
        with HttpReceiver() as http:
            stack.start_all()
            key = stack.create_key("bulk-budget", rate_per_minute=60, burst=120)["key"]
            over = stack.http(key).post(BULK, content=ndjson("budget", 501))
            assert over.status_code == 429 and "retry-after" not in over.headers
            assert over.json()["max_events"] == 500
            assert stack.http(key).post(BULK, content=ndjson("budget", 500)).status_code == 202
            refused = stack.http(key).post(BULK, content=ndjson("budget", 10))
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            # The normal lane's bucket is untouched by the backfill.
            live = [{"type": "event", "name": "live"}] * 100
            assert stack.http(key).post("/api/v1/events", json={"events": live}).status_code == 202
            (tmp_path / "big.ndjson").write_bytes(ndjson("budget", 600))
            run = coalmine(
                stack,
                "import",
                str(tmp_path / "big.ndjson"),
                "--key",
                key,
                "--chunk",
                "600",
                "--url",
                stack.url,
            )
            assert run.returncode == 1 and "--chunk 500 or less" in run.stderr, run.stderr

            # History: every channel hears of a new error at once, but not of a backfilled one.
            channel = {"name": "hook", "kind": "webhook", "url": http.url("/hook")}
            assert stack.admin().post("/api/v1/admin/channels", json=channel).status_code == 201
            other = stack.create_key("history")["key"]
            errors = b"".join(
                b'{"type":"error","name":"hist.error","message":"old %d"}\n' % i for i in range(5)
            )
            assert stack.http(other).post(BULK, content=errors).status_code == 202
            now = {"events": [{"type": "error", "name": "live.error", "message": "new"}]}
            assert stack.http(other).post("/api/v1/events", json=now).status_code == 202
            # Same key, same partition: the backfill was routed before the live error.
            alerts = wait_for(
                lambda: [
                    r.json()
                    for r in http.requests
                    if r.headers.get("x-coalmine-event") == "error.alert"
                ],
                60,
                "the live error's alert",
            )
            assert [a["name"] for a in alerts] == ["live.error"]
            # Storage runs apart from alerting: the alert may come first.
            wait_for(lambda: stack.series_total("hist.error") == 5, 60, "the backfill stored")
            wait_for(lambda: rolled_up(stack, "hist.error") == 5, 60, "the backfill rolled up")
    finally:
        stack.stop()


def rolled_up(stack: Stack, name: str) -> int:
    params = {
        "name": name,
        "from": "-1d",
        "to": str(time.time() + 86400),
        "interval": "1d",
        "source": "rollups",
    }
    response = stack.admin().get("/api/v1/query/series", params=params)
    assert response.status_code == 200, response.text
    return sum(point["count"] for point in response.json()["points"])


def test_the_importer_counts_a_part_stored_and_sends_the_rest(tmp_path: Path) -> None:
    """Answers the service gives rarely (the log failing half way through a request, a spent
    budget), from a real local HTTP server standing in for it."""
    source = tmp_path / "a.ndjson"
    source.write_bytes(b"".join(b'{"type":"event","name":"n","value":%d}\n' % i for i in range(6)))
    partial = {
        "accepted": 2,
        "acknowledged_through_line": 3,
        "rejected": [{"line": 2, "error": "bad"}],
        "rejected_count": 1,
    }
    with HttpReceiver() as http:
        http.queue(
            Reply(
                503,
                {"Retry-After": "1", "Content-Type": "application/json"},
                json.dumps(partial).encode(),
            ),
            Reply(429, {"Retry-After": "0"}, b'{"error":"bulk budget exceeded"}'),
            Reply(202, {}, b'{"accepted":3,"rejected":[],"rejected_count":0}'),
        )
        summary = import_files([source], http.url(), "ch_live_x", chunk_lines=10, out=io.StringIO())
        bodies = [gzip.decompress(r.body).splitlines() for r in http.requests]
    assert (summary["accepted"], summary["rejected"], summary["first_rejections"]) == (
        5,
        1,
        ["a.ndjson:2: bad"],
    )
    assert [len(b) for b in bodies] == [6, 3, 3] and bodies[2][
        0
    ] == b'{"type":"event","name":"n","value":3}'
    assert json.loads((tmp_path / "a.ndjson.coalmine-import").read_text())["lines"] == 6
    with HttpReceiver() as http:
        http.queue(
            Reply(
                429,
                {},
                b'{"error":"600 events is more than one request may have (500)","max_events":500}',
            )
        )
        with pytest.raises(ImportFailed, match="--chunk 500 or less"):
            import_files([source], http.url(), "ch_live_x", restart=True, out=io.StringIO())


def test_an_interrupted_import_resumes_and_stores_each_event_once(
    stack: Stack, ingest_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = f"imp-{time.monotonic_ns()}"
    (tmp_path / "a.ndjson").write_bytes(
        ndjson(f"{tag}-nd", 2_500) + b'{"type":"bogus","name":"x"}\n'
    )
    (tmp_path / "b.json").write_text(
        json.dumps([{"type": "error", "name": f"{tag}-js", "message": "m"}] * 700)
    )
    (tmp_path / "c.csv").write_text(
        "type,name,value\n" + "".join(f"event,{tag}-csv,{i}\n" for i in range(1_200))
    )
    files = [str(tmp_path / n) for n in ("a.ndjson", "b.json", "c.csv")]
    key_file = tmp_path / "key"
    key_file.write_text(ingest_key)
    first = coalmine(
        stack,
        "import",
        *files,
        "--key-file",
        str(key_file),
        "--chunk",
        "1000",
        "--max-chunks",
        "2",
        "--url",
        stack.url,
        "--json",
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["interrupted"] is True
    assert json.loads((tmp_path / "a.ndjson.coalmine-import").read_text())["lines"] == 2_000

    second = coalmine(
        stack,
        "import",
        *files,
        "--key-file",
        str(key_file),
        "--chunk",
        "1000",
        "--url",
        stack.url,
        "--json",
    )
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert (summary["accepted"], summary["rejected"], summary["skipped_lines"]) == (4_400, 1, 2_000)
    assert summary["first_rejections"][0].startswith("a.ndjson:2501: ")
    for name, count in ((f"{tag}-nd", 2_500), (f"{tag}-js", 700), (f"{tag}-csv", 1_200)):
        wait_for(lambda n=name, c=count: stack.series_total(n) == c, 60, f"{name} stored once")
    monkeypatch.setenv("COALMINE_INGEST_KEY", ingest_key)  # the key from the environment
    again = coalmine(stack, "import", *files, "--url", stack.url, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["skipped_lines"] == 2_501 + 700 + 1_200  # nothing sent twice


def test_the_cli_says_what_is_wrong_with_its_input(tmp_path: Path) -> None:
    """Before sending anything: the second file's problem stops the import at once (nothing
    listens on the URL)."""
    (tmp_path / "ok.ndjson").write_text('{"type":"event","name":"n"}\n')
    (tmp_path / "x.txt").write_text("hello")
    (tmp_path / "typo.csv").write_text("type,name,vaule\nevent,n,1\n")

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "coalmine", "import", *args, "--url", "http://127.0.0.1:9"],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip

    for name, problem in (("x.txt", "unknown format"), ("typo.csv", "unknown column(s) 'vaule'")):
        refused = run(str(tmp_path / "ok.ndjson"), str(tmp_path / name), "--key", "k")
        assert refused.returncode == 1 and problem in refused.stderr, refused.stderr
    no_key = run(
        str(tmp_path / "ok.ndjson"),
        env={k: v for k, v in os.environ.items() if k != "COALMINE_INGEST_KEY"},
    )
    assert no_key.returncode == 2 and "COALMINE_INGEST_KEY" in no_key.stderr
