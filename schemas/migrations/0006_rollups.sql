-- Per-name rollups computed by the `rollups` Faust agent (processors/rollups.py) and stored by
-- the store's rollup sink: one row per (grain, name, type, key, bucket) per delta; the
-- AggregatingMergeTree folds deltas together in the background, so every reader aggregates
-- again (sum/min/max ... GROUP BY) and is right whatever has been merged yet.
-- A delta is inserted as one insert with insert_deduplication_token = its id (source
-- partition, last offset and last batch id: offsets restart at 0 with a fresh embedded log), so
-- a delta inserted twice (sink crash between insert and commit, a retried publish) counts once
-- while it is among the last non_replicated_deduplication_window inserts.
-- value_min/value_max are NULL in a row whose events carried no value.
CREATE TABLE IF NOT EXISTS rollups
(
    grain       Enum8('minute' = 1, 'hour' = 2, 'day' = 3),
    name        LowCardinality(String),
    type        Enum8('event' = 1, 'error' = 2),
    key_id      LowCardinality(String),
    bucket      DateTime('UTC'),
    count       SimpleAggregateFunction(sum, UInt64),
    value_count SimpleAggregateFunction(sum, UInt64),
    value_sum   SimpleAggregateFunction(sum, Float64),
    value_min   SimpleAggregateFunction(min, Nullable(Float64)),
    value_max   SimpleAggregateFunction(max, Nullable(Float64))
)
ENGINE = AggregatingMergeTree
ORDER BY (grain, name, bucket, type, key_id)
SETTINGS non_replicated_deduplication_window = 100000;
