-- The marts and their build bookkeeping, created empty when missing: the marts are now updated in place
-- (partitions replaced day by day), so their shape is fixed here rather than by a CREATE TABLE AS.
CREATE TABLE IF NOT EXISTS fc_latest_balances (
    account_id VARCHAR, customer_id VARCHAR, currency VARCHAR, balance_type VARCHAR,
    as_of TIMESTAMP WITH TIME ZONE, current_minor BIGINT, available_minor BIGINT, used_minor BIGINT,
    "current" DECIMAL(38, 4), available DECIMAL(38, 4), used DECIMAL(38, 4), fetched_at TIMESTAMP WITH TIME ZONE,
    account_status VARCHAR, category VARCHAR, subcategory VARCHAR, institution_name VARCHAR, display_name VARCHAR,
    last4 VARCHAR, staleness_hours DOUBLE, built_at TIMESTAMP WITH TIME ZONE
);
CREATE TABLE IF NOT EXISTS fc_daily_balances (
    account_id VARCHAR, customer_id VARCHAR, currency VARCHAR, day DATE, balance_type VARCHAR, observed BOOLEAN,
    as_of TIMESTAMP WITH TIME ZONE, current_minor BIGINT, available_minor BIGINT, used_minor BIGINT,
    "current" DECIMAL(38, 4), available DECIMAL(38, 4), used DECIMAL(38, 4), built_at TIMESTAMP WITH TIME ZONE
);
CREATE TABLE IF NOT EXISTS fc_underwriting_features (
    account_id VARCHAR, customer_id VARCHAR, currency VARCHAR, balance_type VARCHAR, window_days INTEGER,
    window_start DATE, window_end DATE, days_with_value BIGINT, days_observed BIGINT, coverage DOUBLE,
    avg_daily_balance_minor DOUBLE, min_daily_balance_minor BIGINT, max_daily_balance_minor BIGINT,
    p10_daily_balance_minor DOUBLE, p90_daily_balance_minor DOUBLE, stddev_daily_balance_minor DOUBLE,
    days_negative BIGINT, longest_negative_streak BIGINT, latest_current_minor BIGINT, latest_available_minor BIGINT,
    latest_as_of TIMESTAMP WITH TIME ZONE, staleness_hours DOUBLE, built_at TIMESTAMP WITH TIME ZONE
);
CREATE TABLE IF NOT EXISTS fc_customer_liquidity (
    customer_id VARCHAR, currency VARCHAR, accounts BIGINT, cash_accounts BIGINT, cash_available_minor BIGINT,
    cash_available DECIMAL(38, 4), cash_accounts_current_fallback BIGINT, credit_accounts BIGINT,
    credit_current_minor BIGINT, credit_current DECIMAL(38, 4), oldest_as_of TIMESTAMP WITH TIME ZONE,
    newest_as_of TIMESTAMP WITH TIME ZONE, max_staleness_hours DOUBLE, built_at TIMESTAMP WITH TIME ZONE
);
-- When each mart partition (partition_day) was last built; partition_day NULL holds a mart's watermark: the
-- start of its last run that left every day up to that run's day up to date (or, for the unpartitioned
-- marts, their last build).
CREATE TABLE IF NOT EXISTS _fc_mart_partitions (
    mart VARCHAR NOT NULL,
    partition_day DATE,
    built_at TIMESTAMP WITH TIME ZONE NOT NULL,
    row_count BIGINT NOT NULL
);
CREATE OR REPLACE VIEW fc_current_underwriting_features AS
SELECT * FROM fc_underwriting_features
WHERE window_end = (SELECT max(window_end) FROM fc_underwriting_features);
