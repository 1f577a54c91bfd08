-- The newest finished request for a subject hash, if any.
SELECT request_id FROM fc_deletions WHERE subject_hash = $subject_hash AND status = 'done'
ORDER BY requested_at DESC LIMIT 1;
