-- fc_sufficient_funds(account_id, amount_minor, currency, "at" := now()): is there enough money for a debit?
-- Always one row: sufficient (null when there is no balance), basis ('available' when the newest balance of
-- that account and currency has an available amount, 'current_fallback' when it has only current, as
-- Stripe's guide advises, 'no_balance' otherwise), balance_minor, as_of, staleness_hours (from as_of to "at").
-- Reads fc_balances directly, so it answers from the newest landed balance without waiting for the marts.
-- Column references are qualified: an unqualified account_id/currency would be the macro's parameter.
CREATE OR REPLACE MACRO fc_sufficient_funds(account_id, amount_minor, currency, "at" := now()) AS TABLE
WITH newest AS (
    SELECT b.as_of, b.available_minor, b.current_minor
    FROM fc_balances AS b
    WHERE b.account_id = account_id AND b.currency = lower(currency)
    ORDER BY b.as_of DESC
    LIMIT 1
),
picked AS (
    SELECT
        n.as_of,
        CASE
            WHEN n.available_minor IS NOT NULL THEN 'available'
            WHEN n.current_minor IS NOT NULL THEN 'current_fallback'
            ELSE 'no_balance'
        END AS basis,
        coalesce(n.available_minor, n.current_minor) AS balance_minor
    FROM (SELECT 1 AS one) AS single_row
    LEFT JOIN newest AS n ON true
)
SELECT
    p.balance_minor >= amount_minor AS sufficient,
    p.basis,
    p.balance_minor,
    p.as_of,
    (epoch_us(CAST("at" AS TIMESTAMPTZ)) - epoch_us(p.as_of)) / 3600e6 AS staleness_hours
FROM picked AS p;
