-- The last $limit refreshes of each account of a list, newest first (skipped runs carry no time and sort last),
-- with the account's recorded runs per outcome. Parameters: $accounts (VARCHAR[]), $limit (INTEGER).
WITH mine AS (
    SELECT r.*
    FROM fc_balance_refreshes AS r
    WHERE r.account_id IN (SELECT unnest($accounts::VARCHAR[]))
),
per_outcome AS (
    SELECT m.account_id, m.outcome, count(*) AS runs FROM mine AS m GROUP BY m.account_id, m.outcome
),
summary AS (
    SELECT p.account_id, list(struct_pack(outcome := p.outcome, runs := p.runs) ORDER BY p.runs DESC, p.outcome)
        AS outcomes
    FROM per_outcome AS p
    GROUP BY p.account_id
),
latest AS (
    SELECT m.account_id, m.outcome, m.requested_at, m.completed_at, m.status, m.error_code,
        row_number() OVER (
            PARTITION BY m.account_id ORDER BY coalesce(m.completed_at, m.requested_at) DESC NULLS LAST, m.run_id
        ) AS recency
    FROM mine AS m
    QUALIFY recency <= $limit
)
SELECT l.*, s.outcomes
FROM latest AS l
JOIN summary AS s ON s.account_id = l.account_id
ORDER BY l.account_id, l.recency;
