-- A daily ingest observes every account again: observed_at moves, so the whole of fc_accounts is republished.
UPDATE fc_accounts SET observed_at = $observed_at
