-- Tidy balance history: one row per (account_id, as_of, currency), Stripe's sign, exact decimals.
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
