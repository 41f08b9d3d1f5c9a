-- API keys, the durable copy of the keys topic: the embedded broker keeps nothing on disk, so
-- the store re-seeds the topic from here at start. Only the SHA-256 of a key is stored.
-- Each row is a key's whole state; `version` (ms of its latest change) keeps the newest.
CREATE TABLE IF NOT EXISTS api_keys
(
    id         String,
    name       String,
    key_hash   String,
    scope      LowCardinality(String),
    created_at DateTime64(3, 'UTC'),
    revoked_at Nullable(DateTime64(3, 'UTC')),
    last_used_at Nullable(DateTime64(3, 'UTC')),
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;
