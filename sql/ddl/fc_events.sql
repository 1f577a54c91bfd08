-- One row per Stripe Financial Connections account event received (webhook or events API), deduplicated by id.
CREATE TABLE IF NOT EXISTS fc_events (
    event_id VARCHAR PRIMARY KEY,
    type VARCHAR NOT NULL,
    created TIMESTAMPTZ NOT NULL,
    account_id VARCHAR,
    received_at TIMESTAMPTZ NOT NULL,
    payload VARCHAR NOT NULL
);
