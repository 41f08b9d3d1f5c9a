-- Aggregates the web UI's pages read instead of scanning (docs/benchmarks.md, "Web UI pages"),
-- each kept by a materialized view on every insert into its source table, so whatever stores a
-- row (the store's sinks, a test, bench/ui.py's seeding) keeps them right, and backfilled here
-- from the rows stored before, so an upgraded store shows the same pages at once.
-- Each view exists before its backfill: a row stored in between is in both, which max/min
-- tables do not mind, and the sum table's backfill adds only what it lacks (see below).

-- Per canary: its latest check-in (not a /start), latest message, latest /start and latest
-- flip: what queries.canaries.canary_facts scanned every check-in for. max() of (time, value)
-- tuples keeps the latest whatever order rows arrive and merge in; a check-in stored twice (a
-- replayed batch) changes nothing. Epoch 0 / (epoch 0, '') mean "none".
CREATE TABLE IF NOT EXISTS canary_latest
(
    canary_id    LowCardinality(String),
    last_checkin SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    last_message SimpleAggregateFunction(max, Tuple(DateTime64(3, 'UTC'), String)),
    last_start   SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    last_flip    SimpleAggregateFunction(max, Tuple(DateTime64(3, 'UTC'), String))
)
ENGINE = AggregatingMergeTree
ORDER BY canary_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS canary_latest_checkins TO canary_latest AS
SELECT
    canary_id,
    if(kind != 'start', at, toDateTime64(0, 3, 'UTC')) AS last_checkin,
    if(message != '', (at, message), (toDateTime64(0, 3, 'UTC'), '')) AS last_message,
    if(kind = 'start', at, toDateTime64(0, 3, 'UTC')) AS last_start
FROM checkins;

CREATE MATERIALIZED VIEW IF NOT EXISTS canary_latest_flips TO canary_latest AS
SELECT canary_id, (at, toString(status)) AS last_flip
FROM canary_flips;

INSERT INTO canary_latest (canary_id, last_checkin, last_message, last_start)
SELECT
    canary_id,
    maxIf(at, kind != 'start'),
    max(if(message != '', (at, message), (toDateTime64(0, 3, 'UTC'), ''))),
    maxIf(at, kind = 'start')
FROM checkins
GROUP BY canary_id;

INSERT INTO canary_latest (canary_id, last_flip)
SELECT canary_id, max((at, toString(status))) FROM canary_flips GROUP BY canary_id;

-- Per error name: its first sighting ever, which queries.errors scanned every stored error for.
CREATE TABLE IF NOT EXISTS error_first_seen
(
    name       LowCardinality(String),
    first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY name;

CREATE MATERIALIZED VIEW IF NOT EXISTS error_first_seen_events TO error_first_seen AS
SELECT name, ts AS first_seen FROM events WHERE type = 'error';

INSERT INTO error_first_seen
SELECT name, min(ts) FROM events WHERE type = 'error' GROUP BY name;

-- The hour and day rollups' counts ordered by time first: top_names and totals ask for a time
-- range over every name, which the rollups' key (grain, name, bucket) cannot narrow (they read
-- every hour row of every name). Without key_id, summed over keys. Deltas are deduplicated as
-- in `rollups`: a delta the rollups table drops as a repeat is dropped here too (the view's
-- insert carries a token derived from the delta's).
CREATE TABLE IF NOT EXISTS rollups_by_time
(
    grain  Enum8('minute' = 1, 'hour' = 2, 'day' = 3),
    bucket DateTime('UTC'),
    type   Enum8('event' = 1, 'error' = 2),
    name   LowCardinality(String),
    count  SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (grain, bucket, type, name)
SETTINGS non_replicated_deduplication_window = 100000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollups_by_time_deltas TO rollups_by_time AS
SELECT grain, bucket, type, name, count FROM rollups WHERE grain IN ('hour', 'day');

-- What the rollups hold beyond what the view has already added (rows stored since it exists),
-- so it adds nothing when run again; only a delta stored during this one statement could be
-- counted twice or missed, and migrations run before the store's sinks start.
INSERT INTO rollups_by_time (grain, bucket, type, name, count)
SELECT grain, bucket, type, name, stored - viewed
FROM (
    SELECT grain, bucket, type, name, sum(count) AS stored
    FROM rollups WHERE grain IN ('hour', 'day')
    GROUP BY grain, bucket, type, name
) AS source
LEFT JOIN (
    SELECT grain, bucket, type, name, sum(count) AS viewed
    FROM rollups_by_time
    GROUP BY grain, bucket, type, name
) AS target USING (grain, bucket, type, name)
WHERE stored > viewed
