"""The bulk lane and `coalmine import` against a running stack: per-line errors, gzip, limits,
the separate budget, history that never alerts, and an interrupted import resumed without
losing or doubling an event."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import wait_for
from tests.integration.harness import Stack
from tests.integration.test_cli import coalmine

BULK = "/api/v1/events/bulk"


def ndjson(name: str, n: int) -> bytes:
    return b"".join(b'{"type":"event","name":"%s","value":%d}\n' % (name.encode(), i) for i in range(n))


def test_bulk_stores_the_valid_lines_and_reports_the_others(stack: Stack, ingest_key: str) -> None:
    name = f"bulk-{time.monotonic_ns()}"
    body = ndjson(name, 250) + b'{"type":"event"}\n{not json\n' + ndjson(name, 50)
    response = stack.http(ingest_key).post(BULK, content=body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["accepted"] == 300 and answer["rejected_count"] == 2
    assert [r["line"] for r in answer["rejected"]] == [251, 252]
    zipped = stack.http(ingest_key).post(BULK, content=gzip.compress(ndjson(name, 1000)), headers={"Content-Encoding": "gzip"})
    assert zipped.status_code == 202 and zipped.json()["accepted"] == 1000
    wait_for(lambda: stack.series_total(name) == 1300, 60, "every accepted line stored")


def test_bulk_refuses_what_is_too_big_or_unreadable(stack: Stack, ingest_key: str) -> None:
    client = stack.http(ingest_key)
    too_many = client.post(BULK, content=b'{"type":"event","name":"x"}\n' * 100_001)
    assert too_many.status_code == 413 and "100000" in too_many.json()["error"]
    bomb = gzip.compress(b" " * (51 * 1024 * 1024))
    assert client.post(BULK, content=bomb, headers={"Content-Encoding": "gzip"}).status_code == 413
    assert client.post(BULK, content=b"not gzip", headers={"Content-Encoding": "gzip"}).status_code == 400
    nothing = client.post(BULK, content=b"{nope\n")
    assert nothing.status_code == 400 and nothing.json()["rejected"][0]["line"] == 1
    assert stack.http().post(BULK, content=ndjson("x", 1)).status_code == 401


def test_the_bulk_budget_is_its_own(tmp_path: Path) -> None:
    stack = Stack(tmp_path, bulk_burst=500, bulk_rate_per_hour=3600)
    try:
        stack.start_all()
        key = stack.create_key("bulk-budget", rate_per_minute=60, burst=120)["key"]
        assert stack.http(key).post(BULK, content=ndjson("budget", 500)).status_code == 202
        refused = stack.http(key).post(BULK, content=ndjson("budget", 10))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        # The normal lane's bucket is untouched by the backfill.
        assert stack.http(key).post("/api/v1/events", json={"events": [{"type": "event", "name": "live"}] * 100}).status_code == 202
    finally:
        stack.stop()


def test_an_interrupted_import_resumes_and_stores_each_event_once(stack: Stack, ingest_key: str, tmp_path: Path) -> None:
    tag = f"imp-{time.monotonic_ns()}"
    (tmp_path / "a.ndjson").write_bytes(ndjson(f"{tag}-nd", 2_500) + b'{"type":"bogus","name":"x"}\n')
    (tmp_path / "b.json").write_text(json.dumps([{"type": "error", "name": f"{tag}-js", "message": "m"}] * 700))
    (tmp_path / "c.csv").write_text("type,name,value\n" + "".join(f"event,{tag}-csv,{i}\n" for i in range(1_200)))
    files = [str(tmp_path / n) for n in ("a.ndjson", "b.json", "c.csv")]
    key_file = tmp_path / "key"
    key_file.write_text(ingest_key)
    first = coalmine(stack, "import", *files, "--key-file", str(key_file), "--chunk", "1000", "--max-chunks", "2", "--url", stack.url, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["interrupted"] is True
    assert json.loads((tmp_path / "a.ndjson.coalmine-import").read_text())["lines"] == 2_000

    second = coalmine(stack, "import", *files, "--key-file", str(key_file), "--chunk", "1000", "--url", stack.url, "--json")
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert (summary["accepted"], summary["rejected"], summary["skipped_lines"]) == (4_400, 1, 2_000)
    assert "2501" in summary["first_rejections"][0]
    for name, count in ((f"{tag}-nd", 2_500), (f"{tag}-js", 700), (f"{tag}-csv", 1_200)):
        wait_for(lambda n=name, c=count: stack.series_total(n) == c, 60, f"{name} stored once")
    again = coalmine(stack, "import", *files, "--key-file", str(key_file), "--url", stack.url, "--json")
    assert json.loads(again.stdout)["skipped_lines"] == 2_501 + 700 + 1_200  # nothing sent twice


def test_the_cli_says_what_is_wrong_with_its_input(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello")
    run = subprocess.run(
        [sys.executable, "-m", "coalmine", "import", str(tmp_path / "x.txt"), "--key", "k", "--url", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1 and "unknown format" in run.stderr
