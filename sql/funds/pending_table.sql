-- Funds check: balances not in the warehouse yet (pending events, a refresh just made), in a temporary table.
CREATE TEMP TABLE fc_pending_balances (
    account_id VARCHAR, currency VARCHAR, as_of TIMESTAMPTZ, available_minor BIGINT, current_minor BIGINT
);
