"""`coalmine import FILE...`: backfill events from files through the bulk lane.

Formats, by extension: `.ndjson`/`.jsonl` (one event per line, sent as is), `.json` (an array
of events, or `{"events": [...]}`), `.csv` (a header row naming event fields: `type`, `name`,
`message`, `value`, `ts`, `meta`; an empty cell is an absent field, `value` is read as a number
when it looks like one, `meta` as JSON). `.gz` on any of them is read compressed; a UTF-8
byte-order mark is dropped.

Events go in chunks of `--chunk` lines (fewer if they would pass CHUNK_MAX_BYTES),
gzip-compressed, to POST /api/v1/events/bulk. After each acknowledged chunk the import writes
its progress next to the file (`FILE.coalmine-import`: lines done, accepted, rejected, the
file's size; replaced atomically), so an interrupted import started again goes on after the
last acknowledged chunk; `--restart` ignores it. 429 and 503 are waited out (Retry-After); a
503 that says up to which line the log acknowledged counts that part and sends the rest.
Rejected lines are counted and the first few shown with their file and line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from schemas.errors import ImportFailed
from schemas.wire import Event

BULK_PATH = "/api/v1/events/bulk"
DEFAULT_CHUNK_LINES = 10_000
CHUNK_MAX_BYTES = 16 * 1024 * 1024  # a third of the bulk lane's 50 MB, however long the lines
BAR_WIDTH = 24
SHOWN_REJECTIONS = 5
TRANSPORT_RETRIES, TRANSPORT_RETRY_S = 30, 2.0  # a server restarting, not one gone for good
STATE_SUFFIX = ".coalmine-import"


# --- reading, pure --------------------------------------------------------------------------
def kind_of(path: Path) -> str:
    name = path.name.removesuffix(".gz")
    for suffix, kind in (
        (".ndjson", "ndjson"),
        (".jsonl", "ndjson"),
        (".json", "json"),
        (".csv", "csv"),
    ):
        if name.endswith(suffix):
            return kind
    raise ImportFailed(
        f"{path}: unknown format (use .ndjson, .jsonl, .json or .csv, optionally .gz)"
    )


def csv_header_problem(columns: list[str]) -> str | None:
    """What is wrong with a CSV header, checked before any row is sent: a column that is not
    an event field would have every row refused (a typo such as `vaule`), and so would a
    missing `type` or `name`."""
    fields = Event.__struct_fields__
    required = fields[: len(fields) - len(Event.__struct_defaults__)]
    unknown = [c for c in columns if c not in fields]
    missing = [f for f in required if f not in columns]
    if not unknown and not missing:
        return None
    what = [f"unknown column(s) {', '.join(map(repr, unknown))}"] if unknown else []
    what += [f"missing column(s) {', '.join(missing)}"] if missing else []
    return f"{'; '.join(what)} (the columns are {', '.join(fields)})"


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


class EventFile:
    """A file's events as NDJSON lines, one per event in file order, and how far through the
    file (in its bytes as stored, compressed or not) the reading is, for the progress bar."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = kind_of(path)
        self._size = max(1, path.stat().st_size)
        self._raw: BinaryIO | None = None

    def fraction(self) -> float:
        raw = self._raw
        return 1.0 if raw is None or raw.closed else min(1.0, raw.tell() / self._size)

    def place(self, n: int) -> str:
        """Where the file's n-th event (from 1) is, as a person opening the file looks for it."""
        if self.kind == "csv":
            return f"{self.path.name} row {n}"  # data rows, after the header
        if self.kind == "json":
            return f"{self.path.name}[{n - 1}]"
        return f"{self.path.name}:{n}"

    def lines(self) -> Iterator[bytes]:
        with open(self.path, "rb") as raw:
            self._raw = raw
            stream: BinaryIO = gzip.GzipFile(fileobj=raw) if self.path.suffix == ".gz" else raw  # type: ignore[assignment]
            try:
                yield from self._lines(stream)
            except UnicodeDecodeError as exc:
                raise ImportFailed(f"{self.path}: not UTF-8 ({exc})") from None
            except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
                raise ImportFailed(f"{self.path}: {exc}") from None

    def _lines(self, stream: BinaryIO) -> Iterator[bytes]:
        if self.kind == "ndjson":
            # Sent as they are: the server judges each line (bad UTF-8 included) and says which.
            # Only a byte-order mark, which editors on Windows write, is dropped.
            for number, line in enumerate(stream):
                yield (line.removeprefix(b"\xef\xbb\xbf") if number == 0 else line).rstrip(b"\r\n")
            return
        # newline="": the csv module's own quoting handles line breaks inside cells.
        text = io.TextIOWrapper(
            stream, encoding="utf-8-sig", newline="" if self.kind == "csv" else None
        )
        if self.kind == "csv":
            rows = csv.DictReader(text)
            header_problem = csv_header_problem(rows.fieldnames or [])
            if header_problem:
                raise ImportFailed(f"{self.path}: {header_problem}")
            for row in rows:
                yield json.dumps(csv_event(row), separators=(",", ":")).encode()
            return
        try:
            document = json.load(text)
        except ValueError as exc:
            raise ImportFailed(f"{self.path}: not JSON ({exc})") from None
        events = document.get("events") if isinstance(document, dict) else document
        if not isinstance(events, list):
            raise ImportFailed(f'{self.path}: expected an array of events or {{"events": [...]}}')
        for event in events:
            yield json.dumps(event, separators=(",", ":")).encode()


def lines_of(path: Path) -> Iterator[bytes]:
    """The file's events as NDJSON lines, one per event, in file order."""
    return EventFile(path).lines()


def chunks(
    lines: Iterator[bytes], size: int, skip: int, max_bytes: int = CHUNK_MAX_BYTES
) -> Iterator[tuple[int, list[bytes]]]:
    """(number of the chunk's first line, its lines) after skipping `skip` lines: `size`
    lines, or fewer once they hold `max_bytes` (large events must not push a request over
    the bulk lane's byte limit)."""
    chunk: list[bytes] = []
    first, held = skip + 1, 0
    for number, line in enumerate(lines, 1):
        if number <= skip:
            continue
        chunk.append(line)
        held += len(line) + 1
        if len(chunk) == size or held >= max_bytes:
            yield first, chunk
            first, chunk, held = number + 1, [], 0
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
def _json_of(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def send_chunk(
    client: httpx.Client, lines: list[bytes], wait: Any = time.sleep
) -> tuple[int, dict[str, Any]]:
    """POST one chunk until the server takes it: (lines of it settled, the server's answer).
    Fewer lines than sent when the log acknowledged only part of it (a 503 naming the line):
    the rest is sent again as the next chunk."""
    body = gzip.compress(b"\n".join(lines) + b"\n", compresslevel=5)
    failures = 0
    while True:
        try:
            response = client.post(
                BULK_PATH,
                content=body,
                headers={"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"},
            )
        except httpx.TransportError as exc:
            # Sent again: after a connection lost mid-request the chunk may have been stored,
            # and is then stored twice (the one case; the server cannot tell a resend).
            failures += 1
            if failures > TRANSPORT_RETRIES:
                raise ImportFailed(
                    f"cannot reach {client.base_url} ({type(exc).__name__}: {exc}); run again to go on"
                ) from None
            wait(TRANSPORT_RETRY_S, f"{type(exc).__name__}: {exc}")
            continue
        answer = _json_of(response)
        if response.status_code == 202 or (response.status_code == 400 and "accepted" in answer):
            return len(lines), answer  # a 400 with a report: no line of the chunk was valid
        retry_after = response.headers.get("retry-after", "")
        if response.status_code in (429, 503) and retry_after.isascii() and retry_after.isdigit():
            through = answer.get("acknowledged_through_line", 0)
            if through:  # part of the chunk is stored: count it, send the rest next
                return through, answer
            wait(float(retry_after), answer.get("error", f"HTTP {response.status_code}"))
            continue
        if response.status_code == 429 and "max_events" in answer:
            raise ImportFailed(f"{answer.get('error')}: use --chunk {answer['max_events']} or less")
        raise ImportFailed(f"the server answered {response.status_code}: {response.text[:300]}")


class _Screen:
    """The progress bar, on a terminal (stderr) only: the file, how far through it, counts and
    this run's pace; and what a wait is for."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.on = hasattr(out, "isatty") and out.isatty()
        self.started = time.monotonic()
        self.accepted = 0  # this run's
        self.source: EventFile | None = None
        self.progress = Progress()

    def rate(self) -> float:
        return self.accepted / max(1e-9, time.monotonic() - self.started)

    def show(self, note: str = "", end: str = "") -> None:
        if not self.on or self.source is None:
            return
        fraction = 1.0 if end else self.source.fraction()
        filled = int(fraction * BAR_WIDTH)
        print(
            f"\r{self.source.path.name} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {fraction:4.0%}"
            f"  {self.progress.accepted:,} accepted  {self.progress.rejected:,} rejected"
            f"  {self.rate():,.0f} events/s{'  ' + note if note else ''}\x1b[K",
            end=end, file=self.out, flush=True,
        )  # fmt: skip

    def wait(self, seconds: float, why: str) -> None:
        self.show(f"waiting {seconds:g}s: {why}")
        time.sleep(seconds)


def import_files(
    paths: list[Path],
    url: str,
    key: str,
    chunk_lines: int = DEFAULT_CHUNK_LINES,
    restart: bool = False,
    max_chunks: int | None = None,
    out: Any = sys.stderr,
    verify: ssl.SSLContext | bool = True,
) -> dict[str, Any]:
    """Import every file; a summary. `accepted`/`rejected` count each file's whole import,
    earlier runs included; `events_per_s` is this run's pace. `max_chunks` stops after that
    many requests (tests use it to interrupt an import)."""
    for (
        path
    ) in paths:  # every file readable, of a known kind, with a good header, before anything is sent
        if not path.is_file():
            raise ImportFailed(f"{path}: not a file")
        if kind_of(path) == "csv":
            reading = EventFile(path).lines()
            next(reading, None)
            reading.close()
    totals = {"files": 0, "accepted": 0, "rejected": 0, "skipped_lines": 0}
    shown: list[str] = []
    sent = 0
    screen = _Screen(out)
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=auth, timeout=300, verify=verify) as client:
        for path in paths:
            screen.source = EventFile(path)
            screen.progress = progress = (
                Progress(size=path.stat().st_size) if restart else Progress.load(path)
            )
            totals["skipped_lines"] += progress.lines
            for first, lines in chunks(screen.source.lines(), chunk_lines, progress.lines):
                while lines:  # more than once when the log took only part of the chunk (503)
                    if max_chunks is not None and sent >= max_chunks:
                        return {**totals, "interrupted": True}
                    done, answer = send_chunk(client, lines, screen.wait)
                    sent += 1
                    progress.lines += done
                    progress.accepted += answer.get("accepted", 0)
                    progress.rejected += answer.get("rejected_count", 0)
                    progress.save(path)
                    screen.accepted += answer.get("accepted", 0)
                    for item in answer.get("rejected", [])[: SHOWN_REJECTIONS - len(shown)]:
                        shown.append(
                            f"{screen.source.place(first + item['line'] - 1)}: {item['error']}"
                        )
                    screen.show()
                    first, lines = first + done, lines[done:]
            screen.show(end="\n")
            totals["files"] += 1
            totals["accepted"] += progress.accepted
            totals["rejected"] += progress.rejected
    seconds = time.monotonic() - screen.started
    return {
        **totals,
        "interrupted": False,
        "seconds": round(seconds, 2),
        "events_per_s": round(screen.accepted / max(seconds, 1e-9)),
        "first_rejections": shown,
    }
