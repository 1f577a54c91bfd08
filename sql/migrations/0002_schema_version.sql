-- 0.2.0: the warehouse records its version, and every table 0.1.0 created only on demand now exists, in its
-- 0.1.0 shape, so later migrations always find the tables they change. fc_events was created by the first
-- events drain; the marts by their first build (CREATE TABLE AS, so every column nullable).
CREATE TABLE IF NOT EXISTS fc_schema_migrations (
    version INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (version)
);
CREATE TABLE IF NOT EXISTS fc_events (
    event_id VARCHAR PRIMARY KEY,
    type VARCHAR NOT NULL,
    created TIMESTAMPTZ NOT NULL,
    account_id VARCHAR,
    received_at TIMESTAMPTZ NOT NULL,
    payload VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS fc_latest_balances (
    account_id VARCHAR, customer_id VARCHAR, currency VARCHAR, balance_type VARCHAR, as_of TIMESTAMPTZ,
    current_minor BIGINT, available_minor BIGINT, used_minor BIGINT,
    "current" DECIMAL(38, 4), available DECIMAL(38, 4), used DECIMAL(38, 4),
    fetched_at TIMESTAMPTZ, account_status VARCHAR, category VARCHAR, subcategory VARCHAR, institution_name VARCHAR,
    display_name VARCHAR, last4 VARCHAR, staleness_hours DOUBLE, built_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS fc_daily_balances (
    account_id VARCHAR, customer_id VARCHAR, currency VARCHAR, day DATE, balance_type VARCHAR, observed BOOLEAN,
    as_of TIMESTAMPTZ, current_minor BIGINT, available_minor BIGINT, used_minor BIGINT,
    "current" DECIMAL(38, 4), available DECIMAL(38, 4), used DECIMAL(38, 4), built_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS fc_underwriting_features (
    account_id VARCHAR, customer_id VARCHAR, currency VARCHAR, balance_type VARCHAR, window_days INTEGER,
    window_start DATE, window_end DATE, days_with_value BIGINT, days_observed BIGINT, coverage DOUBLE,
    avg_daily_balance_minor DOUBLE, min_daily_balance_minor BIGINT, max_daily_balance_minor BIGINT,
    p10_daily_balance_minor DOUBLE, p90_daily_balance_minor DOUBLE, stddev_daily_balance_minor DOUBLE,
    days_negative BIGINT, longest_negative_streak BIGINT, latest_current_minor BIGINT, latest_available_minor BIGINT,
    latest_as_of TIMESTAMPTZ, staleness_hours DOUBLE, built_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS fc_customer_liquidity (
    customer_id VARCHAR, currency VARCHAR, accounts BIGINT, cash_accounts BIGINT, cash_available_minor BIGINT,
    cash_available DECIMAL(38, 4), cash_accounts_current_fallback BIGINT, credit_accounts BIGINT,
    credit_current_minor BIGINT, credit_current DECIMAL(38, 4), oldest_as_of TIMESTAMPTZ, newest_as_of TIMESTAMPTZ,
    max_staleness_hours DOUBLE, built_at TIMESTAMPTZ
);
