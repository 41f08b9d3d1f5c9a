-- Raw events, one row per accepted event. Ordered for charting by name and time; partitioned
-- by month of the event's own time. `_partition`/`_offset` say where on the log the row came
-- from; the sink uses `received_at` (minmax-indexed) to find rows of a replayed range.
CREATE TABLE IF NOT EXISTS events
(
    event_id    UUID,
    key_id      LowCardinality(String),
    type        Enum8('event' = 1, 'error' = 2),
    name        LowCardinality(String),
    message     String,
    value       Nullable(Float64),
    meta        String,
    ts          DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    _partition  UInt16,
    _offset     UInt64,
    INDEX received_at_minmax received_at TYPE minmax GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (name, type, ts, event_id);
