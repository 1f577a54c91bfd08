-- SQLite: a funds decision by id, as it was answered.
SELECT answer FROM funds_decisions WHERE decision_id = :decision_id;
