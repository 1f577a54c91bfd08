-- fc_account_health rows: per account of fc_accounts (only $account_id when it is not null), as of $built_at,
-- whether it still gives data and can be debited, and the first relink reason that applies (sql/marts/README.md
-- defines each). Reads fc_accounts, fc_balance_refreshes and the last 30 days of fc_balances; a SELECT, so the
-- mart inserts it (insert_account_health.sql) and a funds check runs it for one account on a read-only file.
-- Parameters: $built_at TIMESTAMPTZ, $account_id VARCHAR (null: every account), $warning_days INTEGER,
-- $failure_threshold INTEGER, $failed_outcomes VARCHAR[] (FAILED_REFRESH_OUTCOMES), $window_start,
-- $window_end TIMESTAMPTZ (the 30 UTC days ending on the build day).
WITH accounts AS (
    SELECT * FROM fc_accounts WHERE $account_id::VARCHAR IS NULL OR account_id = $account_id::VARCHAR
),
-- Read twice below, so inlined: materialized, it held every refresh of every run in memory (a year of daily runs at
-- 100,000 accounts: see bench_account_health.py in the README). The account filters test the parameter, not
-- membership in `accounts`: other accounts' rows fall out in the joins, and the semi-join cost about 1 s there.
refreshes AS NOT MATERIALIZED (  -- a run's refresh, at the time it ended (or was asked for); skipped ones have neither
    SELECT r.account_id, r.outcome, coalesce(r.completed_at, r.requested_at) AS at
    FROM fc_balance_refreshes AS r
    WHERE ($account_id::VARCHAR IS NULL OR r.account_id = $account_id::VARCHAR)
      AND coalesce(r.completed_at, r.requested_at) <= $built_at::TIMESTAMPTZ
),
succeeded AS (
    SELECT a.account_id,
           -- greatest() skips nulls: a run's success, or Stripe's own latest state (an event, a funds check)
           greatest(max(r.at), any_value(CASE WHEN a.balance_refresh_status = 'succeeded'
                                              THEN a.balance_refresh_last_attempted_at END)) AS at
    FROM accounts AS a
    LEFT JOIN refreshes AS r ON r.account_id = a.account_id AND r.outcome = 'succeeded'
    GROUP BY a.account_id
),
failing AS (
    SELECT s.account_id, s.at AS last_success,
           count(r.account_id) AS failures
    FROM succeeded AS s
    LEFT JOIN refreshes AS r ON r.account_id = s.account_id
        AND list_contains($failed_outcomes::VARCHAR[], r.outcome)
        AND (s.at IS NULL OR r.at > s.at)
    GROUP BY s.account_id, s.at
),
observed_days AS (
    SELECT b.account_id, count(DISTINCT (b.as_of AT TIME ZONE 'UTC')::DATE) AS days
    FROM fc_balances AS b
    WHERE b.as_of >= $window_start::TIMESTAMPTZ AND b.as_of < $window_end::TIMESTAMPTZ
      AND ($account_id::VARCHAR IS NULL OR b.account_id = $account_id::VARCHAR)
    GROUP BY b.account_id
)
SELECT
    a.account_id,
    a.customer_id,
    a.status,
    a.access_stopped_at,
    a.expected_deactivation_at,
    a.account_numbers_status,
    f.last_success AS last_successful_refresh_at,
    f.failures AS consecutive_failed_refreshes,
    coalesce(d.days, 0) AS days_with_balance_30d,
    CASE  -- most urgent first; the order is RELINK_REASONS in pipelines/contract/tables.py
        WHEN a.status = 'disconnected' THEN 'disconnected'
        WHEN a.status IS DISTINCT FROM 'active' THEN 'inactive'  -- inactive, or a status Stripe adds
        WHEN a.account_numbers_status IS NOT NULL
             AND a.account_numbers_status NOT IN ('transactable', 'pending') THEN 'numbers_not_transactable'
        WHEN a.expected_deactivation_at <= $built_at::TIMESTAMPTZ + to_days($warning_days::INTEGER)
             THEN 'deactivating_soon'
        WHEN f.failures >= $failure_threshold::INTEGER THEN 'refresh_failing'
        WHEN NOT coalesce(list_contains(a.permissions, 'balances'), false) THEN 'no_balance_permission'
    END AS relink_reason,
    $built_at::TIMESTAMPTZ AS built_at
FROM accounts AS a
JOIN failing AS f ON f.account_id = a.account_id
LEFT JOIN observed_days AS d ON d.account_id = a.account_id
ORDER BY a.account_id
