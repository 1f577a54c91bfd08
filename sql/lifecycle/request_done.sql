-- Parquet no longer holds the subject's rows either.
UPDATE fc_deletions SET status = 'done', completed_at = $completed_at WHERE request_id = $request_id;
