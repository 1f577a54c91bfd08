-- Balances that break the contract (unknown currency, bad amount, ...), kept with the reason and raw JSON.
CREATE TABLE IF NOT EXISTS fc_rejected_balances (
    account_id VARCHAR,
    as_of TIMESTAMPTZ,
    currency VARCHAR,
    reason VARCHAR NOT NULL,
    payload VARCHAR,
    fetched_at TIMESTAMPTZ NOT NULL
);
