"""runtime.key_registry: key generation and hashing, the Authorization header, the key registry."""

from __future__ import annotations

import hashlib

import pytest

from runtime.key_registry import KeyRegistry, bearer_key, generate_key, hash_key
from schemas.limits import API_KEY_PREFIX
from schemas.records import KeyCreated, KeyRevoked, KeyUsed
from schemas.topics import Topic

KEY_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
VALID_KEY = API_KEY_PREFIX + "A" * 43


# --- generate_key, hash_key -----------------------------------------------------------------


def test_it_generates_keys_with_the_prefix() -> None:
    assert generate_key().startswith(API_KEY_PREFIX)


def test_it_generates_at_least_32_random_url_safe_characters() -> None:
    rest = generate_key()[len(API_KEY_PREFIX) :]

    assert len(rest) >= 32
    assert set(rest) <= KEY_CHARS


def test_it_generates_a_different_key_each_time() -> None:
    assert len({generate_key() for _ in range(100)}) == 100


def test_it_accepts_its_own_generated_keys() -> None:
    key = generate_key()

    assert bearer_key(f"Bearer {key}") == key


def test_it_hashes_a_key_to_its_sha256_hex() -> None:
    assert hash_key(VALID_KEY) == hashlib.sha256(VALID_KEY.encode()).hexdigest()
    assert hash_key(VALID_KEY) != hash_key(VALID_KEY + "B")


# --- bearer_key -----------------------------------------------------------------------------


def test_it_reads_a_bearer_key() -> None:
    assert bearer_key(f"Bearer {VALID_KEY}") == VALID_KEY


def test_it_ignores_spaces_around_the_key() -> None:
    assert bearer_key(f"Bearer  {VALID_KEY} ") == VALID_KEY


@pytest.mark.parametrize("header", [None, ""])
def test_it_refuses_a_missing_header(header: str | None) -> None:
    assert bearer_key(header) is None


@pytest.mark.parametrize(
    "header",
    [VALID_KEY, f"Basic {VALID_KEY}", f"Token {VALID_KEY}", f"Bearer:{VALID_KEY}", "Bearer "],
)
def test_it_refuses_other_schemes_and_shapes(header: str) -> None:
    assert bearer_key(header) is None


@pytest.mark.parametrize(
    "key", ["ch_test_" + "A" * 43, "CH_LIVE_" + "A" * 43, "A" * 51, "ch_live" + "A" * 44]
)
def test_it_refuses_a_wrong_prefix(key: str) -> None:
    assert bearer_key(f"Bearer {key}") is None


def test_it_refuses_a_key_shorter_than_32_random_characters() -> None:
    assert bearer_key(f"Bearer {API_KEY_PREFIX}{'A' * 31}") is None
    assert bearer_key(f"Bearer {API_KEY_PREFIX}{'A' * 32}") == API_KEY_PREFIX + "A" * 32


def test_it_refuses_a_key_over_128_characters() -> None:
    longest = API_KEY_PREFIX + "A" * (128 - len(API_KEY_PREFIX))

    assert bearer_key(f"Bearer {longest}") == longest
    assert bearer_key(f"Bearer {longest}A") is None


@pytest.mark.parametrize("bad", ["+", "/", "=", ".", " ", "é", "\x00", "%"])
def test_it_refuses_characters_outside_the_key_alphabet(bad: str) -> None:
    key = API_KEY_PREFIX + "A" * 20 + bad + "A" * 20

    assert bearer_key(f"Bearer {key}") is None


# --- KeyRegistry ----------------------------------------------------------------------------

KEY = API_KEY_PREFIX + "k" * 43
CREATED = KeyCreated(id="key_1", name="ci", key_hash=hash_key(KEY), created_at=100.0)
HEADER = f"Bearer {KEY}"


def registry_with(*records: object) -> KeyRegistry:
    registry = KeyRegistry()
    for record in records:
        registry.apply(record)  # type: ignore[arg-type]
    return registry


def test_it_authenticates_a_created_key_for_its_scope() -> None:
    key = registry_with(CREATED).authenticate(HEADER, "ingest")

    assert key is not None
    assert key.id == "key_1"
    assert key.name == "ci"
    assert key.active


def test_it_refuses_a_key_for_another_scope() -> None:
    registry = registry_with(CREATED)
    read = KeyCreated(
        id="key_2", name="dash", key_hash=hash_key(VALID_KEY), created_at=1.0, scope="read"
    )
    registry.apply(read)

    assert registry.authenticate(HEADER, "read") is None
    assert registry.authenticate(f"Bearer {VALID_KEY}", "ingest") is None
    assert registry.authenticate(f"Bearer {VALID_KEY}", "read") is not None


def test_it_refuses_an_unknown_key() -> None:
    assert registry_with(CREATED).authenticate(f"Bearer {VALID_KEY}", "ingest") is None


def test_it_refuses_a_malformed_header_for_a_known_key() -> None:
    registry = registry_with(CREATED)

    assert registry.authenticate(KEY, "ingest") is None
    assert registry.authenticate(None, "ingest") is None


def test_it_refuses_a_revoked_key() -> None:
    registry = registry_with(CREATED, KeyRevoked("key_1", 200.0))

    assert registry.authenticate(HEADER, "ingest") is None
    assert registry.get("key_1").revoked_at == 200.0  # type: ignore[union-attr]


def test_it_applies_the_same_records_twice_harmlessly() -> None:
    registry = registry_with(CREATED, CREATED)

    assert registry.authenticate(HEADER, "ingest") is not None
    assert len(registry.all()) == 1

    registry.apply(KeyRevoked("key_1", 200.0))
    registry.apply(KeyRevoked("key_1", 300.0))

    assert registry.get("key_1").revoked_at == 200.0  # type: ignore[union-attr]
    assert registry.authenticate(HEADER, "ingest") is None


def test_it_keeps_a_revoked_key_revoked_when_its_creation_is_replayed() -> None:
    registry = registry_with(CREATED, KeyRevoked("key_1", 200.0), CREATED)

    assert registry.authenticate(HEADER, "ingest") is None


def test_it_sets_last_used_at_to_the_latest_use() -> None:
    registry = registry_with(CREATED, KeyUsed("key_1", 150.0), KeyUsed("key_1", 120.0))

    assert registry.get("key_1").last_used_at == 150.0  # type: ignore[union-attr]

    registry.apply(KeyUsed("key_1", 180.0))

    assert registry.get("key_1").last_used_at == 180.0  # type: ignore[union-attr]


def test_it_ignores_records_for_unknown_keys() -> None:
    registry = registry_with(KeyRevoked("key_x", 1.0), KeyUsed("key_x", 2.0))

    assert registry.get("key_x") is None
    assert registry.all() == []


def test_it_assigns_each_key_a_stable_events_partition() -> None:
    first = registry_with(CREATED).get("key_1")
    again = registry_with(CREATED).get("key_1")

    assert first is not None and again is not None
    assert 0 <= first.partition < Topic.EVENTS.partitions
    assert first.partition == again.partition


def test_it_lists_keys_by_creation_time() -> None:
    registry = registry_with(
        KeyCreated(id="key_b", name="b", key_hash="b" * 64, created_at=20.0),
        KeyCreated(id="key_a", name="a", key_hash="a" * 64, created_at=10.0),
    )

    assert [key.id for key in registry.all()] == ["key_a", "key_b"]


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_it_reads_the_bearer_scheme_in_any_case(scheme: str) -> None:
    assert bearer_key(f"{scheme} {VALID_KEY}") == VALID_KEY


def test_only_a_well_formed_key_never_seen_is_unknown() -> None:
    """What is worth a look at the log before a 401 (runtime.catch_up)."""
    revoked = registry_with(CREATED, KeyRevoked(id="key_1", revoked_at=200.0))

    assert registry_with(CREATED).unknown(f"Bearer {VALID_KEY}")
    assert not registry_with(CREATED).unknown(HEADER)  # known, whatever the scope asked
    assert not revoked.unknown(HEADER)  # revoked for good
    assert not registry_with().unknown("Bearer nonsense")
    assert not registry_with().unknown(None)
