-- The last run in fc_balance_refreshes (by its newest requested/completed time) and its refresh outcomes:
-- attempted and failed count the outcomes in $attempted / $failed (VARCHAR[]: ATTEMPTED_OUTCOMES and
-- FAILED_OUTCOMES in pipelines/contract/tables.py; skips are neither).
-- No row when no run has a time.
WITH runs AS (
    SELECT r.run_id, max(greatest(r.requested_at, r.completed_at)) AS ran_at
    FROM fc_balance_refreshes AS r
    GROUP BY r.run_id
),
last_run AS (
    SELECT runs.run_id, runs.ran_at
    FROM runs
    WHERE runs.ran_at IS NOT NULL
    ORDER BY runs.ran_at DESC, runs.run_id DESC
    LIMIT 1
)
SELECT
    last_run.run_id,
    last_run.ran_at,
    count(*) AS accounts,
    count(*) FILTER (WHERE list_contains($attempted::VARCHAR[], r.outcome)) AS attempted,
    count(*) FILTER (WHERE list_contains($failed::VARCHAR[], r.outcome)) AS failed
FROM last_run
JOIN fc_balance_refreshes AS r ON r.run_id = last_run.run_id
GROUP BY last_run.run_id, last_run.ran_at
