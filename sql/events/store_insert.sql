-- SQLite: store one event unless its id is already there (changes() = 0 then).
INSERT INTO stored_events (event_id, type, created, account_id, received_at, source, payload)
VALUES (:event_id, :type, :created, :account_id, :received_at, :source, :payload)
ON CONFLICT (event_id) DO NOTHING;
