-- Deletion requests not done yet, oldest first.
SELECT request_id, subject_type, subject_hash, status FROM fc_deletions WHERE status <> 'done'
ORDER BY requested_at, request_id;
