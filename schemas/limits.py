"""The ingest contract's numbers (docs/ingest.md), defined once."""

MAX_EVENTS_PER_BATCH = 100
MAX_BODY_BYTES = 512 * 1024
NAME_MAX_CHARS = 200
MESSAGE_MAX_CHARS = 2_000
META_MAX_BYTES = 4 * 1024
API_KEY_PREFIX = "ch_live_"
# secrets.token_urlsafe(32) gives 43 characters: 256 bits after the prefix.
API_KEY_RANDOM_BYTES = 32
KEY_NAME_MAX_CHARS = 200

# Rate limit per key (token bucket): the spec's budget, adjustable per key by the admin API.
DEFAULT_RATE_PER_MINUTE = 60
DEFAULT_BURST = 120
MAX_RATE_PER_MINUTE = 1_000_000_000
MAX_BURST = 1_000_000_000
