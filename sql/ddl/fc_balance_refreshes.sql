-- One row per account per run: what happened to its balance refresh.
CREATE TABLE IF NOT EXISTS fc_balance_refreshes (
    run_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    outcome VARCHAR NOT NULL,
    requested_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    status VARCHAR,
    next_refresh_available_at TIMESTAMPTZ,
    error_code VARCHAR,
    PRIMARY KEY (run_id, account_id)
);
