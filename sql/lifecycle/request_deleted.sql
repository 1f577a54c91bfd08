-- The DuckDB rows are gone (same transaction as the deletes): record what was removed.
UPDATE fc_deletions SET status = 'deleted', rows_removed = $rows_removed
WHERE request_id = $request_id AND status = 'pending';
