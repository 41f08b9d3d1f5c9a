"""API keys: generation, hashing, and the in-memory registry every API process derives from
the keys topic.

Keys are looked up by their SHA-256: the registry holds no key in clear, and a lookup's timing
depends on the hash of what the client sent, which tells an attacker nothing about stored keys.
The final equality check is constant-time all the same.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from domain.token_bucket import Limit
from schemas.limits import API_KEY_PREFIX, API_KEY_RANDOM_BYTES
from schemas.partitions import partition_for
from schemas.records import (
    KeyCreated,
    KeyLimitsChanged,
    KeyRecord,
    KeyRevoked,
    KeyScope,
    KeyUsed,
    key_record_decoder,
)
from schemas.topics import Topic

_BEARER = "Bearer "
# token_urlsafe's alphabet; anything else after the prefix cannot be one of our keys.
URLSAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def generate_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(API_KEY_RANDOM_BYTES)


def generate_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def bearer_key(authorization: str | None) -> str | None:
    """The ch_live_ key in an Authorization header, or None if absent or malformed."""
    # RFC 9110: the scheme is case-insensitive.
    if not authorization or authorization[: len(_BEARER)].lower() != "bearer ":
        return None
    key = authorization[len(_BEARER) :].strip()
    if not key.startswith(API_KEY_PREFIX) or len(key) > 128:
        return None
    rest = key[len(API_KEY_PREFIX) :]
    if len(rest) < 32 or not URLSAFE_CHARS.issuperset(rest):
        return None
    return key


UNAUTHORIZED_KEY = "missing, unknown or revoked API key"
READ_ONLY_KEY = "this API key is read-only: it can query but not ingest (create an ingest key)"


@dataclass
class ApiKey:
    id: str
    name: str
    key_hash: str
    scope: KeyScope
    created_at: float
    limit: Limit
    partition: int
    revoked_at: float | None = None
    last_used_at: float | None = None

    @property
    def key_id_bytes(self) -> bytes:
        return self.id.encode()

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyRegistry:
    """Keys by hash, fed by KeyRecords in log order (apply is idempotent)."""

    def __init__(self) -> None:
        self._by_hash: dict[str, ApiKey] = {}
        self._by_id: dict[str, ApiKey] = {}

    def apply(self, record: KeyRecord) -> None:
        if isinstance(record, KeyCreated):
            if record.id in self._by_id:
                return
            key = ApiKey(
                id=record.id,
                name=record.name,
                key_hash=record.key_hash,
                scope=record.scope,
                created_at=record.created_at,
                limit=Limit(record.rate_per_minute, record.burst),
                partition=partition_for(record.id, Topic.EVENTS),
            )
            self._by_hash[key.key_hash] = key
            self._by_id[key.id] = key
        elif isinstance(record, KeyRevoked):
            key = self._by_id.get(record.id)
            if key is not None and key.revoked_at is None:
                key.revoked_at = record.revoked_at
        elif isinstance(record, KeyUsed):
            key = self._by_id.get(record.id)
            if key is not None:
                key.last_used_at = max(key.last_used_at or 0.0, record.last_used_at)
        elif isinstance(record, KeyLimitsChanged):
            key = self._by_id.get(record.id)
            if key is not None:
                key.limit = Limit(record.rate_per_minute, record.burst)

    def authenticate(self, authorization: str | None, scope: KeyScope) -> ApiKey | None:
        """The active key of this scope named by the header, else None (-> 401)."""
        presented = bearer_key(authorization)
        if presented is None:
            return None
        digest = hash_key(presented)
        key = self._by_hash.get(digest)
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            return None
        if not key.active or key.scope != scope:
            return None
        return key

    def ingest_refusal(self, authorization: str | None) -> str:
        """What a 401 on ingest says: a read key is told it is read-only. Only on a refusal,
        so the accepted path pays nothing for it."""
        presented = bearer_key(authorization)
        key = self._by_hash.get(hash_key(presented)) if presented is not None else None
        if key is not None and key.active and key.scope == "read":
            return READ_ONLY_KEY
        return UNAUTHORIZED_KEY

    def unknown(self, authorization: str | None) -> bool:
        """A well-formed key this registry has never seen: one another API process may have
        just created (a revoked or wrong-scope key is known, and refused for good)."""
        presented = bearer_key(authorization)
        return presented is not None and hash_key(presented) not in self._by_hash

    def apply_bytes(self, value: bytes) -> None:
        self.apply(key_record_decoder.decode(value))

    def get(self, key_id: str) -> ApiKey | None:
        return self._by_id.get(key_id)

    def all(self) -> list[ApiKey]:
        return sorted(self._by_id.values(), key=lambda k: k.created_at)
