"""The bulk lane's parsing (ingest_api.bulk) and the importer's readers and progress
(coalmine.importer): pure, on bytes and temporary files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from coalmine.importer import Progress, chunks, csv_event, lines_of
from ingest_api.bulk import BULK_MAX_EVENTS, TooLarge, gunzip_capped, parse_ndjson
from ingest_api.bulk_budget import BulkBudget


def test_ndjson_lines_are_judged_one_by_one_with_their_numbers() -> None:
    body = b'{"type":"event","name":"a"}\n\n{"type":"warning","name":"b"}\n{nope\n{"type":"error","name":"c","meta":[1]}\n{"type":"event","name":"d","ts":"2026-07-02T10:00:00Z"}'
    valid, rejected = parse_ndjson(body)
    assert [(n, e.name) for n, e in valid] == [(1, "a"), (6, "d")]
    assert [n for n, _ in rejected] == [3, 4, 5]
    assert "type" in rejected[0][1] and "malformed" in rejected[1][1] and "meta" in rejected[2][1]


def test_too_many_lines_are_refused_whole() -> None:
    with pytest.raises(TooLarge):
        parse_ndjson(b'{"type":"event","name":"a"}\n' * (BULK_MAX_EVENTS + 1))


def test_gzip_is_inflated_up_to_the_cap_and_a_bomb_is_stopped() -> None:
    assert gunzip_capped(gzip.compress(b"x" * 1000), 1000) == b"x" * 1000
    with pytest.raises(TooLarge):
        gunzip_capped(gzip.compress(b"\0" * 10_000_000), 1_000_000)  # 10 KB of gzip
    with pytest.raises(ValueError, match="gzip"):
        gunzip_capped(b"plain text", 1000)


def test_the_bulk_budget_is_a_bucket_per_key_shared_by_the_processes() -> None:
    budget = BulkBudget(rate_per_hour=3600, burst=1000, processes=2)  # 500 each, 30/min
    assert budget.take("k", 500, 0.0) is None
    assert budget.take("k", 1, 0.0) == 2  # one token per 2 s
    assert budget.take("other", 500, 0.0) is None


def test_files_of_each_format_become_the_same_lines(tmp_path: Path) -> None:
    events = [{"type": "event", "name": "a", "value": 1.5}, {"type": "error", "name": "b", "message": "m", "meta": {"k": 1}}]
    (tmp_path / "e.ndjson").write_text("".join(json.dumps(e) + "\n" for e in events))
    (tmp_path / "e.json").write_text(json.dumps({"events": events}))
    with gzip.open(tmp_path / "e.json.gz", "wt") as f:
        json.dump(events, f)
    (tmp_path / "e.csv").write_text('type,name,value,message,meta\nevent,a,1.5,,\nerror,b,,m,"{""k"": 1}"\n')
    for name in ("e.ndjson", "e.json", "e.json.gz", "e.csv"):
        assert [json.loads(line) for line in lines_of(tmp_path / name)] == events, name


def test_a_csv_cell_becomes_a_typed_field_or_nothing() -> None:
    assert csv_event({"type": "event", "name": "n", "value": "3", "ts": "", "meta": "not json"}) == {
        "type": "event", "name": "n", "value": 3, "meta": "not json"
    }  # fmt: skip


def test_chunks_resume_after_the_lines_done() -> None:
    lines = (str(i).encode() for i in range(1, 11))
    assert [(first, [int(x) for x in c]) for first, c in chunks(lines, 4, skip=3)] == [
        (4, [4, 5, 6, 7]),
        (8, [8, 9, 10]),
    ]


def test_progress_survives_on_disk_and_a_changed_file_starts_over(tmp_path: Path) -> None:
    source = tmp_path / "e.ndjson"
    source.write_text("x\n" * 10)
    progress = Progress.load(source)
    progress.lines, progress.accepted = 6, 5
    progress.save(source)
    assert Progress.load(source) == Progress(6, 5, 0, source.stat().st_size)
    source.write_text("x\n" * 11)
    assert Progress.load(source).lines == 0
