-- SQLite: a gap reconciled into the warehouse.
UPDATE event_gaps SET reconciled_at = :reconciled_at WHERE gap_id = :gap_id AND reconciled_at IS NULL;
