-- fc_latest_balances, next state: per (account_id, currency) the newest of the current mart rows and the
-- fc_balances rows fetched after $since (all of fc_balances when $full), joined to the account's current
-- state, with staleness_hours to $built_at. Reads what changed, not all history. Written to a temporary
-- table that replace_latest_balances swaps in. Parameters: $since, $built_at TIMESTAMPTZ, $full BOOLEAN.
CREATE OR REPLACE TEMP TABLE _fc_latest_next AS
WITH candidates AS NOT MATERIALIZED (  -- read twice, never stored: all of fc_balances when $full
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
newest AS (  -- an aggregate, not a window: memory holds one entry per key whatever the history length. Of two
    -- timestamps, not of whole rows: history is stored oldest first, so nearly every row is newer than the one held,
    -- and copying a wide row each time made the full rebuild three times slower.
    SELECT c.account_id, c.currency, max({'as_of': c.as_of, 'fetched_at': c.fetched_at}) AS newest
    FROM candidates AS c
    GROUP BY c.account_id, c.currency
),
latest AS (
    SELECT c.* FROM candidates AS c
    JOIN newest AS n ON n.account_id = c.account_id AND n.currency = c.currency AND n.newest.as_of = c.as_of
        AND n.newest.fetched_at IS NOT DISTINCT FROM c.fetched_at
    -- Never more than one row, as mart rows were fetched on or before $since and the others after it; kept so a
    -- tie could never duplicate a key.
    QUALIFY row_number() OVER (PARTITION BY c.account_id, c.currency) = 1
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
    (epoch_us($built_at::TIMESTAMPTZ) - epoch_us(l.as_of)) / 3600e6 AS staleness_hours,
    $built_at::TIMESTAMPTZ AS built_at
FROM latest AS l
LEFT JOIN fc_accounts AS a ON a.account_id = l.account_id
ORDER BY l.account_id, l.currency;
