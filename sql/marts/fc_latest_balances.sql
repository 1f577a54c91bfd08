-- fc_latest_balances, next state: per (account_id, currency) the newest of the current mart rows and the
-- fc_balances rows fetched after $since (all of fc_balances when $full), joined to the account's current
-- state, with staleness_hours to $built_at. Reads what changed, not all history. Written to a temporary
-- table that replace_latest_balances swaps in. Parameters: $since, $built_at TIMESTAMPTZ, $full BOOLEAN.
CREATE OR REPLACE TEMP TABLE _fc_latest_next AS
WITH candidates AS (
    SELECT l.account_id, l.customer_id, l.currency, l.balance_type, l.as_of, l.current_minor, l.available_minor,
           l.used_minor, l."current", l.available, l.used, l.fetched_at
    FROM fc_latest_balances AS l
    WHERE NOT $full
    UNION ALL
    SELECT b.account_id, b.customer_id, b.currency, b.balance_type, b.as_of, b.current_minor, b.available_minor,
           b.used_minor, b."current", b.available, b.used, b.fetched_at
    FROM fc_balances AS b
    WHERE $full OR b.fetched_at > $since
),
latest AS (  -- an aggregate, not a window: memory holds one row per key whatever the history length
    SELECT c.account_id, c.currency, max_by(c, (c.as_of, c.fetched_at)) AS r
    FROM candidates AS c
    GROUP BY c.account_id, c.currency
)
SELECT
    l.account_id,
    coalesce(a.customer_id, l.r.customer_id) AS customer_id,
    l.currency,
    l.r.balance_type AS balance_type,
    l.r.as_of AS as_of,
    l.r.current_minor AS current_minor,
    l.r.available_minor AS available_minor,
    l.r.used_minor AS used_minor,
    l.r."current" AS "current",
    l.r.available AS available,
    l.r.used AS used,
    l.r.fetched_at AS fetched_at,
    a.status AS account_status,
    a.category,
    a.subcategory,
    a.institution_name,
    a.display_name,
    a.last4,
    (epoch_us($built_at::TIMESTAMPTZ) - epoch_us(l.r.as_of)) / 3600e6 AS staleness_hours,
    $built_at::TIMESTAMPTZ AS built_at
FROM latest AS l
LEFT JOIN fc_accounts AS a ON a.account_id = l.account_id
ORDER BY l.account_id, l.currency;
