-- Canary history: every check-in and every status flip, kept once per id however often the
-- sink sees a record (ReplacingMergeTree, read with FINAL). `control` keeps the latest
-- definition of every canary and channel as its JSON record, to re-seed an empty log.
CREATE TABLE IF NOT EXISTS checkins
(
    id        String,
    canary_id LowCardinality(String),
    kind      LowCardinality(String),
    at        DateTime64(3, 'UTC'),
    message   String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (canary_id, at, id);

CREATE TABLE IF NOT EXISTS canary_flips
(
    id          String,
    canary_id   LowCardinality(String),
    canary_name String,
    status      LowCardinality(String),
    reason      LowCardinality(String),
    at          DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (canary_id, id);

CREATE TABLE IF NOT EXISTS notification_attempts
(
    flip_id      String,
    channel_id   LowCardinality(String),
    channel_kind LowCardinality(String),
    attempt      UInt16,
    at           DateTime64(3, 'UTC'),
    ok           Bool,
    detail       String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (flip_id, channel_id, attempt);

CREATE TABLE IF NOT EXISTS control
(
    id      String,
    kind    LowCardinality(String),
    record  String,
    deleted Bool,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;
