-- 0.2.0, issue 13: the user-managed refresh priorities the budgeted run reads (FC_BALANCES_MAX_REFRESHES).
CREATE TABLE IF NOT EXISTS fc_refresh_priority (
    account_id VARCHAR NOT NULL,
    priority INTEGER NOT NULL,
    reason VARCHAR,
    expires_at TIMESTAMPTZ,
    PRIMARY KEY (account_id)
);
