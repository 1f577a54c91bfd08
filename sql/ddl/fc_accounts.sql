-- One row per Financial Connections account: its latest observed state.
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
