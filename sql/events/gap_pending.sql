-- SQLite: gaps not reconciled yet, oldest first.
SELECT gap_id, gap_from, gap_to, detected_by FROM event_gaps WHERE reconciled_at IS NULL ORDER BY gap_id;
