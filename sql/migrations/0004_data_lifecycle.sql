-- 0.2.0, issue 12 (data lifecycle): when an account's access stopped, the audit of deletion requests, and the
-- outages longer than Stripe keeps events.
ALTER TABLE fc_accounts ADD COLUMN access_stopped_at TIMESTAMPTZ;
-- Accounts already stopped when the warehouse is upgraded: the best we know is the observation that saw it.
UPDATE fc_accounts SET access_stopped_at = observed_at WHERE status IN ('inactive', 'disconnected');
CREATE TABLE IF NOT EXISTS fc_deletions (
    request_id VARCHAR NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    subject_type VARCHAR NOT NULL,
    subject_hash VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    rows_removed VARCHAR,
    completed_at TIMESTAMPTZ,
    PRIMARY KEY (request_id)
);
CREATE TABLE IF NOT EXISTS fc_event_gaps (
    gap_from TIMESTAMPTZ,
    gap_to TIMESTAMPTZ NOT NULL,
    detected_at TIMESTAMPTZ NOT NULL,
    detected_by VARCHAR NOT NULL,
    accounts_reconciled BIGINT NOT NULL,
    balances_landed BIGINT NOT NULL
);
