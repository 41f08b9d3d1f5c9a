-- Rejected ingest requests, counted per key and reason by each API process per interval.
-- One log record becomes several rows sharing its `id`; a replayed record replaces itself.
CREATE TABLE IF NOT EXISTS rejections
(
    id       String,
    origin   LowCardinality(String),
    start    DateTime64(3, 'UTC'),
    end      DateTime64(3, 'UTC'),
    key_id   LowCardinality(String),
    reason   LowCardinality(String),
    requests UInt64,
    events   UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(end)
ORDER BY (id, key_id, reason);
