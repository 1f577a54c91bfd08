-- fc_latest_balances: per (account_id, currency) the newest fc_balances row, with the account's state and
-- staleness_hours from as_of to the build time. Parameter: $build_at (TIMESTAMPTZ).
CREATE OR REPLACE TABLE fc_latest_balances AS
WITH latest AS (
    SELECT b.*
    FROM fc_balances AS b
    QUALIFY row_number() OVER (PARTITION BY b.account_id, b.currency ORDER BY b.as_of DESC) = 1
)
SELECT
    l.account_id,
    coalesce(a.customer_id, l.customer_id) AS customer_id,
    l.currency,
    l.balance_type,
    l.as_of,
    l.current_minor,
    l.available_minor,
    l.used_minor,
    l."current",
    l.available,
    l.used,
    l.fetched_at,
    a.status AS account_status,
    a.category,
    a.subcategory,
    a.institution_name,
    a.display_name,
    a.last4,
    (epoch_us($build_at::TIMESTAMPTZ) - epoch_us(l.as_of)) / 3600e6 AS staleness_hours,
    $build_at::TIMESTAMPTZ AS built_at
FROM latest AS l
LEFT JOIN fc_accounts AS a ON a.account_id = l.account_id
ORDER BY l.account_id, l.currency;
