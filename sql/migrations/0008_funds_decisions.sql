-- 0.2.0, issue 23 (the funds service): every decision `fc-balances serve` answered, landed by the fc_events job.
CREATE TABLE IF NOT EXISTS fc_funds_decisions (
    id VARCHAR NOT NULL,
    created TIMESTAMPTZ NOT NULL,
    account_id VARCHAR NOT NULL,
    customer_id VARCHAR,
    amount_minor BIGINT NOT NULL,
    currency VARCHAR NOT NULL,
    sufficient BOOLEAN,
    basis VARCHAR NOT NULL,
    balance_minor BIGINT,
    as_of TIMESTAMPTZ,
    staleness_hours DOUBLE,
    refreshed BOOLEAN NOT NULL,
    refresh_outcome VARCHAR NOT NULL,
    max_age_seconds DOUBLE NOT NULL,
    PRIMARY KEY (id)
);
