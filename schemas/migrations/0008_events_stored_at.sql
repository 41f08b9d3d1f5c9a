-- When the store inserted each event: with received_at (when the API accepted it), the
-- pipeline's freshness, accepted -> queryable (queries/freshness.py, bench/ingest.py --rate).
-- Rows stored before this migration read it as the time of the query.
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS stored_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD);
