-- Issue 25 (account health): what Stripe says ahead of time about an account going bad, and the mart that lists
-- the accounts to relink. Accounts observed before the upgrade get null in both columns until the next
-- observation (an ingest or any account event) fills them, and fc_account_health is derived data, built by the next
-- marts run.
ALTER TABLE fc_accounts ADD COLUMN expected_deactivation_at TIMESTAMPTZ;
ALTER TABLE fc_accounts ADD COLUMN account_numbers_status VARCHAR;
CREATE TABLE IF NOT EXISTS fc_account_health (
    account_id VARCHAR,
    customer_id VARCHAR,
    status VARCHAR,
    access_stopped_at TIMESTAMPTZ,
    expected_deactivation_at TIMESTAMPTZ,
    account_numbers_status VARCHAR,
    last_successful_refresh_at TIMESTAMPTZ,
    consecutive_failed_refreshes BIGINT,
    days_with_balance_30d BIGINT,
    relink_reason VARCHAR,
    built_at TIMESTAMPTZ
);
