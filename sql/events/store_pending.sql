-- SQLite: the oldest-arrived events not yet landed in the warehouse, up to a sequence number.
SELECT seq, event_id, type, created, account_id, received_at, source, payload
FROM stored_events
WHERE loaded_at IS NULL AND seq <= :max_seq
ORDER BY seq
LIMIT :limit;
