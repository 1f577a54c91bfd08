-- Rows whose currency is not a lowercase ISO 4217 code. Parameter: $codes (VARCHAR[], the valid codes).
-- {table} is filled from the checks' fixed allow-list.
SELECT
    count(*) AS bad_rows,
    list_sort(list(DISTINCT coalesce(t.currency, '<null>')))[1:10] AS sample
FROM {table} AS t
WHERE t.currency IS NULL OR NOT list_contains($codes, t.currency)
