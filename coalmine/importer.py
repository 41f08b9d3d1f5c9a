"""`coalmine import FILE...`: backfill events from files through the bulk lane.

Formats, by extension: `.ndjson`/`.jsonl` (one event per line, sent as is), `.json` (an array
of events, or `{"events": [...]}`), `.csv` (a header row naming event fields: `type`, `name`,
`message`, `value`, `ts`, `meta`; an empty cell is an absent field, `value` is read as a number
when it looks like one, `meta` as JSON). `.gz` on any of them is read compressed.

Events go in chunks of `--chunk` lines, gzip-compressed, to POST /api/v1/events/bulk. After
each acknowledged chunk the import writes its progress next to the file
(`FILE.coalmine-import`: lines done, accepted, rejected; replaced atomically), so an
interrupted import started again goes on after the last acknowledged chunk; `--restart`
ignores it. 429 and 503 are waited out (Retry-After); a 503 that says up to which line the
log acknowledged resumes after it. Rejected lines are counted and the first few shown.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from coalmine.terminal import short_number

BULK_PATH = "/api/v1/events/bulk"
DEFAULT_CHUNK_LINES = 10_000
SHOWN_REJECTIONS = 5
STATE_SUFFIX = ".coalmine-import"


class ImportFailed(RuntimeError):
    """The import cannot go on (unreadable file, refused key, a server error)."""


# --- reading, pure --------------------------------------------------------------------------
def _open_text(path: Path) -> io.TextIOBase:
    # The caller closes it (`with _open_text(...)`).
    raw = gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")  # noqa: SIM115
    return raw  # type: ignore[return-value]


def kind_of(path: Path) -> str:
    name = path.name.removesuffix(".gz")
    for suffix, kind in ((".ndjson", "ndjson"), (".jsonl", "ndjson"), (".json", "json"), (".csv", "csv")):
        if name.endswith(suffix):
            return kind
    raise ImportFailed(f"{path}: unknown format (use .ndjson, .jsonl, .json or .csv, optionally .gz)")


def csv_event(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as an event: empty cells are absent; value a number when it parses as one;
    meta parsed as JSON (a cell that is not JSON is sent as a string and refused by the server,
    with its line number)."""
    event: dict[str, Any] = {}
    for field, cell in row.items():
        if field is None or cell is None or cell == "":
            continue
        if field == "value":
            try:
                event[field] = float(cell) if any(c in cell for c in ".eE") else int(cell)
            except ValueError:
                event[field] = cell
        elif field == "meta":
            try:
                event[field] = json.loads(cell)
            except ValueError:
                event[field] = cell
        else:
            event[field] = cell
    return event


def lines_of(path: Path) -> Iterator[bytes]:
    """The file's events as NDJSON lines, one per event, in file order."""
    kind = kind_of(path)
    with _open_text(path) as text:
        if kind == "ndjson":
            for line in text:
                yield line.rstrip("\n").encode()
        elif kind == "csv":
            for row in csv.DictReader(text):
                yield json.dumps(csv_event(row), separators=(",", ":")).encode()
        else:
            try:
                document = json.load(text)
            except ValueError as exc:
                raise ImportFailed(f"{path}: not JSON ({exc})") from None
            events = document.get("events") if isinstance(document, dict) else document
            if not isinstance(events, list):
                raise ImportFailed(f'{path}: expected an array of events or {{"events": [...]}}')
            for event in events:
                yield json.dumps(event, separators=(",", ":")).encode()


def chunks(lines: Iterator[bytes], size: int, skip: int) -> Iterator[tuple[int, list[bytes]]]:
    """(number of the chunk's first line, its lines) after skipping `skip` lines."""
    chunk: list[bytes] = []
    first = skip + 1
    for number, line in enumerate(lines, 1):
        if number <= skip:
            continue
        chunk.append(line)
        if len(chunk) == size:
            yield first, chunk
            first, chunk = number + 1, []
    if chunk:
        yield first, chunk


# --- progress, kept next to the file ----------------------------------------------------------
@dataclass
class Progress:
    lines: int = 0  # lines of the file acknowledged (accepted or rejected)
    accepted: int = 0
    rejected: int = 0
    size: int = 0  # the file's size when the import began: a changed file starts over

    @staticmethod
    def path_for(path: Path) -> Path:
        return path.with_name(path.name + STATE_SUFFIX)

    @classmethod
    def load(cls, path: Path) -> Progress:
        try:
            data = json.loads(cls.path_for(path).read_text())
            found = cls(**{k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            return cls(size=path.stat().st_size)
        return found if found.size == path.stat().st_size else cls(size=path.stat().st_size)

    def save(self, path: Path) -> None:
        state = self.path_for(path)
        temporary = state.with_name(state.name + ".tmp")
        temporary.write_text(json.dumps(asdict(self)))
        os.replace(temporary, state)  # atomic: a kill leaves the old state or the new one


# --- sending -----------------------------------------------------------------------------------
def send_chunk(client: httpx.Client, lines: list[bytes]) -> tuple[int, dict[str, Any]]:
    """POST one chunk until the server takes it: (lines acknowledged, the 202's body)."""
    body = gzip.compress(b"\n".join(lines) + b"\n", compresslevel=5)
    while True:
        try:
            response = client.post(BULK_PATH, content=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"})
        except httpx.TransportError as exc:
            print(f"\ncoalmine import: {exc!r}; retrying in 2s", file=sys.stderr)
            time.sleep(2)
            continue
        if response.status_code in (202, 400) and "accepted" in response.text:
            return len(lines), response.json()
        if response.status_code in (429, 503):
            answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            through = answer.get("acknowledged_through_line", 0)
            if through:  # part of the chunk is stored: report it, send the rest next
                return through, {"accepted": answer.get("accepted", 0), "rejected": [], "rejected_count": 0}
            time.sleep(float(response.headers.get("retry-after", "2")))
            continue
        raise ImportFailed(f"the server answered {response.status_code}: {response.text[:300]}")


def import_files(
    paths: list[Path],
    url: str,
    key: str,
    chunk_lines: int = DEFAULT_CHUNK_LINES,
    restart: bool = False,
    max_chunks: int | None = None,
    out: Any = sys.stderr,
) -> dict[str, Any]:
    """Import every file; a summary. `max_chunks` stops after that many chunks (tests use it
    to interrupt an import)."""
    started = time.monotonic()
    totals = {"files": 0, "accepted": 0, "rejected": 0, "skipped_lines": 0}
    shown: list[str] = []
    sent_chunks = 0
    show_bar = hasattr(out, "isatty") and out.isatty()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as client:
        for path in paths:
            kind_of(path)
            progress = Progress(size=path.stat().st_size) if restart else Progress.load(path)
            totals["skipped_lines"] += progress.lines
            for first, lines in chunks(lines_of(path), chunk_lines, progress.lines):
                if max_chunks is not None and sent_chunks >= max_chunks:
                    return {**totals, "interrupted": True}
                done, answer = send_chunk(client, lines)
                sent_chunks += 1
                progress.lines += done
                progress.accepted += answer.get("accepted", 0)
                progress.rejected += answer.get("rejected_count", 0)
                for item in answer.get("rejected", []):
                    if len(shown) < SHOWN_REJECTIONS:
                        shown.append(f"{path.name}:{first + item['line'] - 1}: {item['error']}")
                progress.save(path)
                if show_bar:
                    rate = (totals["accepted"] + progress.accepted) / max(1e-9, time.monotonic() - started)
                    print(f"\r{path.name}: {progress.lines:,} lines, {progress.accepted:,} accepted, "
                          f"{progress.rejected:,} rejected, {short_number(rate)} events/s ", end="", file=out, flush=True)  # fmt: skip
            totals["files"] += 1
            totals["accepted"] += progress.accepted
            totals["rejected"] += progress.rejected
            if show_bar:
                print(file=out)
    seconds = time.monotonic() - started
    return {**totals, "interrupted": False, "seconds": round(seconds, 2), "first_rejections": shown}
