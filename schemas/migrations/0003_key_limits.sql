-- Per-key rate limits (token bucket), settable through the admin API.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS rate_per_minute UInt32 DEFAULT 60;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS burst UInt32 DEFAULT 120;
