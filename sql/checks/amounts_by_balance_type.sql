-- Rows that break the type rule: cash rows carry no used amount, credit rows no available amount, and the type
-- is cash or credit. {table} is filled from the checks' fixed allow-list.
SELECT
    count(*) FILTER (
        WHERE t.balance_type = 'cash' AND (t.used_minor IS NOT NULL OR t.used IS NOT NULL)
    ) AS cash_with_used,
    count(*) FILTER (
        WHERE t.balance_type = 'credit' AND (t.available_minor IS NOT NULL OR t.available IS NOT NULL)
    ) AS credit_with_available,
    count(*) FILTER (WHERE t.balance_type IS NULL OR t.balance_type NOT IN ('cash', 'credit')) AS unknown_type
FROM {table} AS t
