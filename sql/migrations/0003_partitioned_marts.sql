-- 0.3.0: history by the day. fc_daily_balances and fc_underwriting_features become daily-partitioned
-- (features keyed by window_end too) with bounded carry-forward, and every mart is updated in place with its
-- builds recorded in _fc_mart_partitions. The old marts are derived data built whole: they are dropped and
-- recreated empty, and the next marts run rebuilds them (every day is out of date: none has a build record).
-- fc_balances and the other contract tables are not touched. Their Parquet bookkeeping stays: the repair that
-- follows the upgrade finds the recorded single files disagree with the empty tables and removes them.
DROP VIEW IF EXISTS fc_current_underwriting_features;
DROP TABLE IF EXISTS fc_latest_balances;
DROP TABLE IF EXISTS fc_daily_balances;
DROP TABLE IF EXISTS fc_underwriting_features;
DROP TABLE IF EXISTS fc_customer_liquidity;
CREATE TABLE fc_latest_balances (
    account_id VARCHAR, customer_id VARCHAR, currency VARCHAR, balance_type VARCHAR,
    as_of TIMESTAMP WITH TIME ZONE, current_minor BIGINT, available_minor BIGINT, used_minor BIGINT,
    "current" DECIMAL(38, 4), available DECIMAL(38, 4), used DECIMAL(38, 4), fetched_at TIMESTAMP WITH TIME ZONE,
    account_status VARCHAR, category VARCHAR, subcategory VARCHAR, institution_name VARCHAR, display_name VARCHAR,
    last4 VARCHAR, staleness_hours DOUBLE, built_at TIMESTAMP WITH TIME ZONE
);
CREATE TABLE fc_daily_balances (
    account_id VARCHAR, customer_id VARCHAR, currency VARCHAR, day DATE, balance_type VARCHAR, observed BOOLEAN,
    as_of TIMESTAMP WITH TIME ZONE, current_minor BIGINT, available_minor BIGINT, used_minor BIGINT,
    "current" DECIMAL(38, 4), available DECIMAL(38, 4), used DECIMAL(38, 4), built_at TIMESTAMP WITH TIME ZONE
);
CREATE TABLE fc_underwriting_features (
    account_id VARCHAR, customer_id VARCHAR, currency VARCHAR, balance_type VARCHAR, window_days INTEGER,
    window_start DATE, window_end DATE, days_with_value BIGINT, days_observed BIGINT, coverage DOUBLE,
    avg_daily_balance_minor DOUBLE, min_daily_balance_minor BIGINT, max_daily_balance_minor BIGINT,
    p10_daily_balance_minor DOUBLE, p90_daily_balance_minor DOUBLE, stddev_daily_balance_minor DOUBLE,
    days_negative BIGINT, longest_negative_streak BIGINT, latest_current_minor BIGINT, latest_available_minor BIGINT,
    latest_as_of TIMESTAMP WITH TIME ZONE, staleness_hours DOUBLE, built_at TIMESTAMP WITH TIME ZONE
);
CREATE TABLE fc_customer_liquidity (
    customer_id VARCHAR, currency VARCHAR, accounts BIGINT, cash_accounts BIGINT, cash_available_minor BIGINT,
    cash_available DECIMAL(38, 4), cash_accounts_current_fallback BIGINT, credit_accounts BIGINT,
    credit_current_minor BIGINT, credit_current DECIMAL(38, 4), oldest_as_of TIMESTAMP WITH TIME ZONE,
    newest_as_of TIMESTAMP WITH TIME ZONE, max_staleness_hours DOUBLE, built_at TIMESTAMP WITH TIME ZONE
);
CREATE TABLE IF NOT EXISTS _fc_mart_partitions (
    mart VARCHAR NOT NULL,
    partition_day DATE,
    built_at TIMESTAMP WITH TIME ZONE NOT NULL,
    row_count BIGINT NOT NULL
);
CREATE VIEW fc_current_underwriting_features AS
SELECT * FROM fc_underwriting_features
WHERE window_end = (SELECT max(window_end) FROM fc_underwriting_features);
