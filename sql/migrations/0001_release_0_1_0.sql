-- Release 0.1.0 (commit d707548): the tables its warehouse open created. A warehouse with fc_balances and no
-- fc_schema_migrations is at this version. Never run on an upgrade; it documents the baseline and lets tests
-- build a 0.1.0-shaped warehouse.
CREATE TABLE IF NOT EXISTS fc_accounts (
    account_id VARCHAR PRIMARY KEY,
    customer_id VARCHAR,
    account_holder_type VARCHAR,
    institution_name VARCHAR,
    display_name VARCHAR,
    last4 VARCHAR,
    category VARCHAR,
    subcategory VARCHAR,
    status VARCHAR,
    permissions VARCHAR[],
    livemode BOOLEAN,
    created_at TIMESTAMPTZ,
    balance_refresh_status VARCHAR,
    balance_refresh_last_attempted_at TIMESTAMPTZ,
    next_refresh_available_at TIMESTAMPTZ,
    observed_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS fc_balances (
    account_id VARCHAR NOT NULL,
    customer_id VARCHAR,
    balance_type VARCHAR NOT NULL,
    currency VARCHAR NOT NULL,
    as_of TIMESTAMPTZ NOT NULL,
    current_minor BIGINT,
    available_minor BIGINT,
    used_minor BIGINT,
    "current" DECIMAL(38, 4),
    available DECIMAL(38, 4),
    used DECIMAL(38, 4),
    fetched_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, as_of, currency)
);
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
CREATE TABLE IF NOT EXISTS fc_rejected_balances (
    account_id VARCHAR,
    as_of TIMESTAMPTZ,
    currency VARCHAR,
    reason VARCHAR NOT NULL,
    payload VARCHAR,
    fetched_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS _fc_parquet_exports (
    table_name VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    row_count BIGINT NOT NULL,
    fingerprint VARCHAR NOT NULL,
    exported_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (table_name, file)
);
