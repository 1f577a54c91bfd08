-- SQLite: the durable event store shared by the webhook receiver and the events sensor.
-- seq orders events by arrival; loaded_at stays NULL until the fc_events asset has landed the event.
CREATE TABLE IF NOT EXISTS stored_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    created INTEGER NOT NULL,
    account_id TEXT,
    received_at REAL NOT NULL,
    source TEXT NOT NULL,
    payload TEXT NOT NULL,
    loaded_at REAL
);
CREATE INDEX IF NOT EXISTS stored_events_pending ON stored_events (seq) WHERE loaded_at IS NULL;
