-- The funds service's memory: per (account, currency) the newest known balance, in an in-memory DuckDB that the
-- fc_sufficient_funds macro reads as fc_balances (its own SQL, installed as a temporary macro).
CREATE TABLE fc_balances (
    account_id VARCHAR, currency VARCHAR, as_of TIMESTAMPTZ, available_minor BIGINT, current_minor BIGINT,
    PRIMARY KEY (account_id, currency)
);
