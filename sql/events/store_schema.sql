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
-- Data lifecycle: the warehouse's salt and the hashes of forgotten subjects (copied here by `fc-balances forget`,
-- so the webhook receiver skips them without opening DuckDB), and expired-cursor gaps the sensor saw.
CREATE TABLE IF NOT EXISTS lifecycle_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS forgotten_subjects (subject_hash TEXT PRIMARY KEY, subject_type TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS event_gaps (
    gap_id INTEGER PRIMARY KEY AUTOINCREMENT,
    gap_from INTEGER,
    gap_to REAL NOT NULL,
    detected_by TEXT NOT NULL,
    reconciled_at REAL
);
-- The funds service's decisions (`fc-balances serve`), each stored before it is answered; loaded_at stays NULL
-- until the fc_events job has landed it in fc_funds_decisions. answer is the JSON answered, as it was sent.
CREATE TABLE IF NOT EXISTS funds_decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    decision_id TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    account_id TEXT NOT NULL,
    customer_id TEXT,
    answer TEXT NOT NULL,
    loaded_at REAL
);
CREATE INDEX IF NOT EXISTS funds_decisions_pending ON funds_decisions (seq) WHERE loaded_at IS NULL;
