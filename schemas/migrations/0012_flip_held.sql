-- Why a flip was sent to no channel ("maintenance <window id>", "depends on <canary name>";
-- domain.holds), so the history shows it and a restart of `coalmine up` restores a held-down
-- canary as held (its recovery is then held too, not sent for a down nobody was told of).
-- Flips stored before this migration have none ('').
ALTER TABLE canary_flips ADD COLUMN IF NOT EXISTS held String DEFAULT '';
