-- No Iceberg file holds the subject's rows either: erasure finished (completed_at).
UPDATE fc_deletions SET status = 'done', completed_at = $completed_at WHERE request_id = $request_id;
