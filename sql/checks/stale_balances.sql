-- Active accounts whose newest balance (per currency) is older than $cutoff (now minus the threshold); counts
-- only, never an account id (run history must not need scrubbing after a deletion request).
WITH newest AS (
    SELECT b.account_id, b.currency, max(b.as_of) AS as_of
    FROM fc_balances AS b
    GROUP BY b.account_id, b.currency
),
active AS (
    SELECT n.*
    FROM newest AS n
    JOIN fc_accounts AS a ON a.account_id = n.account_id
    WHERE a.status = 'active'
)
SELECT
    count(*) AS active_balances,
    count(*) FILTER (WHERE active.as_of < $cutoff) AS stale_balances,
    min(active.as_of) AS oldest_as_of
FROM active
