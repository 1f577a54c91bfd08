-- SQLite: totals, pending count and the newest pending event (by created, then arrival) of the store.
SELECT
    (SELECT count(*) FROM stored_events) AS total,
    (SELECT count(*) FROM stored_events WHERE loaded_at IS NULL) AS pending,
    (SELECT event_id FROM stored_events WHERE loaded_at IS NULL ORDER BY created DESC, seq DESC LIMIT 1) AS newest_pending_id,
    (SELECT coalesce(max(seq), 0) FROM stored_events) AS max_seq;
