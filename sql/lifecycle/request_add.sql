-- Record a deletion request before anything is deleted, so a crash leaves it to be finished.
INSERT INTO fc_deletions (request_id, requested_at, subject_type, subject_hash, status, rows_removed, completed_at)
VALUES ($request_id, $requested_at, $subject_type, $subject_hash, 'pending', NULL, NULL);
