"""The ingest API's request body (docs/ingest.md), decoded by msgspec straight from bytes.

Decisions where the spec is silent (also in docs/ingest.md):
- unknown fields, top-level or per event, are refused with 400: a typo such as `vaule` would
  otherwise drop data silently;
- `value` must be a finite JSON number; `true`/`false` are not numbers;
- `ts` must be RFC 3339 with an offset (`Z` or `+hh:mm`); naive times are refused because the
  server cannot know the sender's zone;
- `meta` must be a JSON object of at most 4 KB as sent (its raw bytes are measured and stored
  verbatim, so the limit is the size the client serialised); `null` means no meta;
- `ts` must lie between 1970 and 2100;
- a key repeated inside an object keeps its last value, as most JSON parsers do.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from schemas.errors import InvalidBatch
from schemas.limits import (
    MAX_EVENTS_PER_BATCH,
    MESSAGE_MAX_CHARS,
    META_MAX_BYTES,
    NAME_MAX_CHARS,
)

EventType = Literal["event", "error"]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX_CHARS)]
Message = Annotated[str, msgspec.Meta(max_length=MESSAGE_MAX_CHARS)]
Timestamp = Annotated[dt.datetime, msgspec.Meta(tz=True)]
NO_META = msgspec.Raw(b"")


class Event(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    type: EventType
    name: Name
    message: Message | None = None
    value: float | None = None
    # Kept as the raw JSON the client sent: measured, checked and stored without re-encoding.
    meta: msgspec.Raw = NO_META
    ts: Timestamp | None = None


class IngestRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    events: Annotated[list[Event], msgspec.Meta(min_length=1, max_length=MAX_EVENTS_PER_BATCH)]


# Times outside these bounds are client bugs, not history; ClickHouse could not store them.
TS_MIN = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
TS_MAX = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)

_decoder = msgspec.json.Decoder(IngestRequest)
_OPEN_BRACE = ord("{")


def decode_batch(body: bytes) -> list[Event]:
    """Decode and validate one ingest body; raise InvalidBatch naming the first problem."""
    try:
        events = _decoder.decode(body).events
    except msgspec.ValidationError as exc:
        raise InvalidBatch(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidBatch(f"malformed JSON: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidBatch("malformed JSON: body is not valid UTF-8") from None
    except RecursionError:
        raise InvalidBatch("malformed JSON: nested too deeply") from None
    for index, event in enumerate(events):
        if event.meta or event.ts is not None:  # most events carry neither: they pay nothing
            problem = event_problem(event, f"$.events[{index}]")
            if problem:
                raise InvalidBatch(problem)
    return events


def event_problem(event: Event, at: str) -> str | None:
    """What msgspec's schema cannot say about a decoded event (`at`: where it is, for the
    message): meta must be an object of at most META_MAX_BYTES of UTF-8; ts within range."""
    meta = memoryview(event.meta)
    if meta and meta != b"null":
        if meta[0] != _OPEN_BRACE:
            return f"Expected `object` - at `{at}.meta`"
        if len(meta) > META_MAX_BYTES:
            return (
                f"meta is {len(meta)} bytes, over the {META_MAX_BYTES}-byte limit - at `{at}.meta`"
            )
        try:  # msgspec checks the syntax of a Raw value but not its encoding
            str(meta, "utf-8")
        except UnicodeDecodeError:
            return f"meta is not valid UTF-8 - at `{at}.meta`"
    if event.ts is not None and not TS_MIN <= event.ts < TS_MAX:
        return f"ts must lie between {TS_MIN.year} and {TS_MAX.year} - at `{at}.ts`"
    return None
