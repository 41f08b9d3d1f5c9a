"""key_usage agent: when each API key was last used, from the events log.

Folds batch records into a per-key latest time and publishes a KeyUsed record onto the keys
topic at most once per PUBLISH_EVERY_S per key, so `keys list` shows last_used_at without any
work on the ingest path. Tolerant state (a lost update only delays last_used_at), so a plain
dict is enough: no changelog table.
"""

from __future__ import annotations

import logging

import faust

from processors.agents.topics import log_topic
from runtime.settings import Settings
from schemas.records import KeyUsed, batch_origin_decoder, record_encoder
from schemas.topics import Topic

log = logging.getLogger(__name__)

PUBLISH_EVERY_S = 5.0


class UsageFold:
    """Latest use per key, and which of those are not yet published: the agent's state and
    its pure step."""

    def __init__(self) -> None:
        self.latest: dict[str, float] = {}
        self.published: dict[str, float] = {}

    def read(self, value: bytes) -> None:
        """An events record: its key was used when it arrived."""
        try:
            origin = batch_origin_decoder.decode(value)
        except Exception:  # noqa: BLE001 - the events sink dead-letters it; here it counts nothing
            log.warning("key_usage: unreadable events record skipped")
            return
        self.note(origin.key_id, origin.received_at)

    def note(self, key_id: str, at: float) -> None:
        if at > self.latest.get(key_id, 0.0):
            self.latest[key_id] = at

    def drain(self) -> list[KeyUsed]:
        """Records for keys used since their last publication; marks them published."""
        due = [
            KeyUsed(key_id, at)
            for key_id, at in self.latest.items()
            if at > self.published.get(key_id, 0.0)
        ]
        for record in due:
            self.published[record.id] = record.last_used_at
        return due


def register(app: faust.App, settings: Settings) -> None:
    events = log_topic(app, Topic.EVENTS)
    keys = log_topic(app, Topic.KEYS)
    fold = UsageFold()

    @app.agent(events, name="key_usage")
    async def key_usage(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            fold.read(value)

    @app.timer(interval=PUBLISH_EVERY_S, name="publish_key_usage")
    async def publish_key_usage() -> None:
        for record in fold.drain():
            await keys.send(value=record_encoder.encode(record))
