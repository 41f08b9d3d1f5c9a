-- A check-in's run id (Healthchecks' ?rid=), which ties a /start to its finish: run durations
-- (queries/canaries.py, canary_runs). Rows stored before this migration have none ('').
ALTER TABLE checkins ADD COLUMN IF NOT EXISTS rid String DEFAULT '';
