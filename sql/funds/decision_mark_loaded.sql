-- SQLite: record that a funds decision has landed in fc_funds_decisions.
UPDATE funds_decisions SET loaded_at = :loaded_at WHERE decision_id = :decision_id AND loaded_at IS NULL;
