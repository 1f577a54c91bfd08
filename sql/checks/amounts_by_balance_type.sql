-- Rows that break the type rule: cash rows carry no used amount, credit rows no available amount, and the type
-- is one of $balance_types (the declared closed set). {table} is filled from the checks' fixed allow-list.
SELECT
    count(*) FILTER (
        WHERE t.balance_type = 'cash' AND (t.used_minor IS NOT NULL OR t.used IS NOT NULL)
    ) AS cash_with_used,
    count(*) FILTER (
        WHERE t.balance_type = 'credit' AND (t.available_minor IS NOT NULL OR t.available IS NOT NULL)
    ) AS credit_with_available,
    count(*) FILTER (WHERE t.balance_type IS NULL OR NOT list_contains($balance_types, t.balance_type)) AS unknown_type
FROM {table} AS t
