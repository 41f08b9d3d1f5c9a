"""Time-ordered identifiers (UUIDv7, RFC 9562) for batches and the events inside them.

The API assigns one id per accepted request; event i of the batch gets that id plus i. The
low 7 bits of a batch id are zero, so the 100 events of a batch never collide with each other
or with another batch, and the per-event ids cost nothing on the ingest path.
"""

from __future__ import annotations

import random
import time
import uuid

_EVENT_INDEX_BITS = 7  # 2**7 = 128 >= MAX_EVENTS_PER_BATCH
_EVENT_INDEX_MASK = (1 << _EVENT_INDEX_BITS) - 1
MAX_EVENTS_PER_BATCH_ID = 1 << _EVENT_INDEX_BITS  # the most events one batch id can number


def uuid7_int(unix_ms: int | None = None) -> int:
    """A UUIDv7 as an int, with its low 7 bits cleared for per-event suffixes."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    # Uniqueness, not secrecy: the fast PRNG (os.urandom per request cost 4% of ingest CPU).
    rand = random.getrandbits(74)
    rand_a = rand >> 62  # 12 bits
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return value & ~_EVENT_INDEX_MASK


def new_batch_id(unix_ms: int | None = None) -> str:
    return "%032x" % uuid7_int(unix_ms)  # uuid.UUID(int=...).hex without the UUID object


def event_id(batch_id: str, index: int) -> uuid.UUID:
    return uuid.UUID(int=int(batch_id, 16) | index)


def batch_id_of(event: uuid.UUID) -> str:
    return uuid.UUID(int=event.int & ~_EVENT_INDEX_MASK).hex


def unix_ms_of(batch_id: str) -> int:
    return int(batch_id, 16) >> 80
