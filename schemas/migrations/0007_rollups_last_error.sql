-- The latest error message of each rollup row, for digests ("errors with their last message",
-- read from the rollups, not by rescanning raw events). max() of a (time, message) tuple keeps
-- the latest one whatever order deltas arrive and merge in; rows without one hold (0, '').
ALTER TABLE rollups
    ADD COLUMN IF NOT EXISTS last_error SimpleAggregateFunction(max, Tuple(Float64, String))
    DEFAULT (0., '');
