"""Secrets are unguessable: check-in tokens and API keys carry at least 128 random bits, from
`secrets`, and no two are alike."""

from __future__ import annotations

import math
import re

from runtime.control_registry import CHECKIN_TOKEN_BYTES, could_be_token, generate_token, hash_token
from runtime.key_registry import API_KEY_PREFIX, API_KEY_RANDOM_BYTES, generate_key, hash_key

URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_checkin_tokens_carry_at_least_128_random_bits() -> None:
    assert CHECKIN_TOKEN_BYTES * 8 >= 128
    tokens = {generate_token() for _ in range(2_000)}
    assert len(tokens) == 2_000
    for token in list(tokens)[:50]:
        assert URLSAFE.match(token) and len(token) * math.log2(64) >= 128
        assert hash_token(token) != token and len(hash_token(token)) == 64


def test_api_keys_carry_at_least_128_random_bits() -> None:
    assert API_KEY_RANDOM_BYTES * 8 >= 128
    keys = {generate_key() for _ in range(2_000)}
    assert len(keys) == 2_000
    for key in list(keys)[:50]:
        body = key.removeprefix(API_KEY_PREFIX)
        assert (
            key.startswith(API_KEY_PREFIX)
            and URLSAFE.match(body)
            and len(body) * math.log2(64) >= 128
        )
        assert hash_key(key) != key


def test_comparisons_of_secrets_are_constant_time() -> None:
    """The code compares a presented secret's hash (or the admin token) with hmac.compare_digest
    only; a plain == on a secret would leak its prefix through timing."""
    import inspect

    from ingest_api import services
    from runtime import key_registry as keys

    assert "hmac.compare_digest" in inspect.getsource(keys.KeyRegistry.authenticate)
    assert "hmac.compare_digest" in inspect.getsource(services.Services.is_admin)


def test_only_strings_of_a_tokens_shape_could_be_a_new_token() -> None:
    """What is worth a look at the log before a check-in's 404 (runtime.catch_up)."""
    assert all(could_be_token(generate_token()) for _ in range(200))
    token = generate_token()
    assert not could_be_token(token[:-1])
    assert not could_be_token(token + "A")
    assert not could_be_token(token[:-1] + "=")
    assert not could_be_token("favicon.ico")
