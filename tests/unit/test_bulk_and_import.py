"""The bulk lane's parsing (ingest_api.bulk) and the importer's readers and progress
(coalmine.importer): pure, on bytes and temporary files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from coalmine.importer import (
    EventFile,
    ImportFailed,
    Progress,
    chunks,
    csv_event,
    csv_header_problem,
    kind_of,
    lines_of,
)
from ingest_api.bulk import (
    BULK_MAX_EVENTS,
    DecompressedTooLarge,
    ValidLine,
    gunzip_capped,
    parse_ndjson,
    records_of,
)
from ingest_api.bulk_budget import BulkBudget
from schemas.wire import Event


def test_ndjson_lines_are_judged_one_by_one_with_their_numbers() -> None:
    body = b'{"type":"event","name":"a"}\n\n{"type":"warning","name":"b"}\n{nope\n{"type":"error","name":"c","meta":[1]}\n{"type":"event","name":"d","ts":"2026-07-02T10:00:00Z"}'
    valid, rejected = parse_ndjson(body)
    assert [(line.number, line.event.name, line.size) for line in valid] == [
        (1, "a", 27),
        (6, "d", 55),
    ]
    assert [n for n, _ in rejected] == [3, 4, 5]
    assert "type" in rejected[0][1] and "malformed" in rejected[1][1] and "meta" in rejected[2][1]


def test_too_many_lines_are_refused_whole() -> None:
    with pytest.raises(DecompressedTooLarge):
        parse_ndjson(b'{"type":"event","name":"a"}\n' * (BULK_MAX_EVENTS + 1))


def test_gzip_is_inflated_up_to_the_cap_and_a_bomb_is_stopped() -> None:
    assert gunzip_capped(gzip.compress(b"x" * 1000), 1000) == b"x" * 1000
    with pytest.raises(DecompressedTooLarge):
        gunzip_capped(gzip.compress(b"\0" * 10_000_000), 1_000_000)  # 10 KB of gzip
    with pytest.raises(ValueError, match="gzip"):
        gunzip_capped(b"plain text", 1000)


def test_the_bulk_budget_is_a_bucket_per_key_shared_by_the_processes() -> None:
    budget = BulkBudget(rate_per_hour=3600, burst=1000, processes=2)  # 500 each, 30/min
    assert budget.take("k", 500, 0.0) is None
    assert budget.take("k", 1, 0.0) == 2  # one token per 2 s
    assert budget.take("other", 500, 0.0) is None


def test_files_of_each_format_become_the_same_lines(tmp_path: Path) -> None:
    events = [
        {"type": "event", "name": "a", "value": 1.5},
        {"type": "error", "name": "b", "message": "m", "meta": {"k": 1}},
    ]
    (tmp_path / "e.ndjson").write_text("".join(json.dumps(e) + "\n" for e in events))
    (tmp_path / "e.json").write_text(json.dumps({"events": events}))
    with gzip.open(tmp_path / "e.json.gz", "wt") as f:
        json.dump(events, f)
    (tmp_path / "e.csv").write_text(
        'type,name,value,message,meta\nevent,a,1.5,,\nerror,b,,m,"{""k"": 1}"\n'
    )
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


def test_a_request_over_the_budgets_burst_never_passes_and_a_refund_is_capped() -> None:
    budget = BulkBudget(rate_per_hour=3600, burst=1000, processes=4)  # 250 each
    assert budget.max_request == 250
    assert budget.take("k", 250, 0.0) is None
    budget.give_back("k", 100, 0.0)  # the log took only 150 of them
    assert budget.take("k", 100, 0.0) is None and budget.take("k", 1, 0.0) is not None
    budget.give_back("k", 10_000, 0.0)
    assert budget.take("k", 250, 0.0) is None and budget.take("k", 1, 0.0) is not None


def test_chunks_stop_short_of_the_byte_cap() -> None:
    lines = iter([b"x" * 9] * 10)  # 10 bytes each with the newline
    assert [len(c) for _, c in chunks(lines, 100, skip=0, max_bytes=30)] == [3, 3, 3, 1]


def test_ndjson_lines_go_as_they_are_but_a_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    (tmp_path / "w.ndjson").write_bytes(b'\xef\xbb\xbf{"a":1}\r\n\n{"b":"\xff"}\r\n')
    assert list(lines_of(tmp_path / "w.ndjson")) == [b'{"a":1}', b"", b'{"b":"\xff"}']
    (tmp_path / "w.csv").write_bytes(b'\xef\xbb\xbftype,name,message\r\nerror,e,"two\r\nlines"\r\n')
    assert [json.loads(x) for x in lines_of(tmp_path / "w.csv")] == [
        {"type": "error", "name": "e", "message": "two\r\nlines"}
    ]


def test_unreadable_files_fail_with_their_name(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("[1, 2")
    (tmp_path / "obj.json").write_text('{"rows": []}')
    (tmp_path / "bad.csv").write_bytes(b"type,name\n\xff,x\n")
    (tmp_path / "bad.ndjson.gz").write_bytes(b"not gzip at all")
    for name, problem in (
        ("bad.json", "not JSON"),
        ("obj.json", "expected an array"),
        ("bad.csv", "not UTF-8"),
        ("bad.ndjson.gz", "bad.ndjson.gz"),
    ):
        with pytest.raises(ImportFailed, match=problem):
            list(lines_of(tmp_path / name))
    with pytest.raises(ImportFailed, match="unknown format"):
        kind_of(tmp_path / "notes.txt")


def test_reading_reports_how_far_through_the_file_it_is(tmp_path: Path) -> None:
    (tmp_path / "big.ndjson").write_bytes(b'{"type":"event","name":"n"}\n' * 20_000)  # 560 KB
    source = EventFile(tmp_path / "big.ndjson")
    seen = [source.fraction() for _ in source.lines()]
    assert 0 < seen[0] < 0.1 and seen[-1] == 1.0 and seen == sorted(seen)
    assert source.fraction() == 1.0  # closed: done


def test_a_rejection_is_placed_as_the_file_is_read(tmp_path: Path) -> None:
    for name, place in (
        ("e.ndjson.gz", "e.ndjson.gz:7"),
        ("e.csv", "e.csv row 7"),
        ("e.json", "e.json[6]"),
    ):
        (tmp_path / name).touch()
        assert EventFile(tmp_path / name).place(7) == place


def test_records_are_cut_by_count_and_by_size_in_order() -> None:
    def lines(*sizes: int) -> list[ValidLine]:
        return [ValidLine(i, Event("event", str(i)), size) for i, size in enumerate(sizes, 1)]

    def cut(valid: list[ValidLine]) -> list[list[int]]:
        return [[line.number for line in r] for r in records_of(valid, max_events=3, max_bytes=100)]

    assert cut(lines(10, 10, 10, 10, 10, 10, 10)) == [[1, 2, 3], [4, 5, 6], [7]]
    assert cut(lines(60, 30, 20, 500, 10)) == [[1, 2], [3], [4], [5]]  # a big line alone
    assert cut([]) == []


def test_a_csv_header_is_checked_before_any_row_is_sent(tmp_path: Path) -> None:
    assert csv_header_problem(["ts", "type", "name", "value"]) is None
    problem = csv_header_problem(["type", "vaule", "host"])
    assert (
        problem is not None and "'vaule', 'host'" in problem and "missing column(s) name" in problem
    )
    (tmp_path / "typo.csv").write_text("type,name,vaule\nevent,n,1\n")
    with pytest.raises(ImportFailed, match="vaule"):
        list(lines_of(tmp_path / "typo.csv"))
