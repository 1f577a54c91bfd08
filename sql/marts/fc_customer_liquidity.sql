-- fc_customer_liquidity: per (customer_id, currency), over the customer's active accounts, the sum of the
-- latest cash available_minor (current_minor where available is null, counted apart) and the sum of the
-- latest credit current_minor. Reads the mart fc_latest_balances only (one row per key, not history); the
-- caller empties the table first, in the same transaction. Parameter: $build_at (TIMESTAMPTZ).
INSERT INTO fc_customer_liquidity
SELECT
    l.customer_id,
    l.currency,
    count(*) AS accounts,
    count(*) FILTER (WHERE l.balance_type = 'cash') AS cash_accounts,
    CAST(sum(coalesce(l.available_minor, l.current_minor)) FILTER (WHERE l.balance_type = 'cash') AS BIGINT)
        AS cash_available_minor,
    CAST(sum(coalesce(l.available, l."current")) FILTER (WHERE l.balance_type = 'cash') AS DECIMAL(38, 4))
        AS cash_available,
    count(*) FILTER (
        WHERE l.balance_type = 'cash' AND l.available_minor IS NULL AND l.current_minor IS NOT NULL
    ) AS cash_accounts_current_fallback,
    count(*) FILTER (WHERE l.balance_type = 'credit') AS credit_accounts,
    CAST(sum(l.current_minor) FILTER (WHERE l.balance_type = 'credit') AS BIGINT) AS credit_current_minor,
    CAST(sum(l."current") FILTER (WHERE l.balance_type = 'credit') AS DECIMAL(38, 4)) AS credit_current,
    min(l.as_of) AS oldest_as_of,
    max(l.as_of) AS newest_as_of,
    (epoch_us($build_at::TIMESTAMPTZ) - epoch_us(min(l.as_of))) / 3600e6 AS max_staleness_hours,
    $build_at::TIMESTAMPTZ AS built_at
FROM fc_latest_balances AS l
WHERE l.account_status = 'active' AND l.customer_id IS NOT NULL
GROUP BY l.customer_id, l.currency
ORDER BY l.customer_id, l.currency;
