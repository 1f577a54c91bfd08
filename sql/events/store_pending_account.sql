-- SQLite: the events of one account not yet landed in the warehouse, newest first (the funds check reads them).
SELECT payload FROM stored_events
WHERE loaded_at IS NULL AND account_id = :account_id
ORDER BY created DESC, seq DESC;
