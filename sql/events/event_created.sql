-- SQLite: when a stored event was created (unix seconds), to date the start of a gap.
SELECT created FROM stored_events WHERE event_id = :event_id;
