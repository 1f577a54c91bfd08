-- Benchmark data (bench/bench_report.py): one refresh row per account per day for $days days ending on
-- $last_day, one run a day; one in twelve failed, inactive accounts skipped. The outcomes and statuses are
-- parameters ($succeeded, $failed, $skipped_inactive: pipelines.contract.tables).
INSERT INTO fc_balance_refreshes
SELECT
    'run_' || CAST(d AS VARCHAR) AS run_id,
    a.account_id,
    CASE WHEN a.status <> 'active' THEN $skipped_inactive
         WHEN hash(a.account_id, d, 'r') % 12 = 0 THEN $failed ELSE $succeeded END AS outcome,
    CASE WHEN a.status = 'active' THEN $last_day::TIMESTAMPTZ - to_days(CAST($days - 1 - d AS INTEGER)) END
        AS requested_at,
    CASE WHEN a.status = 'active'
        THEN $last_day::TIMESTAMPTZ - to_days(CAST($days - 1 - d AS INTEGER)) + INTERVAL 3 SECOND END AS completed_at,
    CASE WHEN a.status <> 'active' THEN NULL
         WHEN hash(a.account_id, d, 'r') % 12 = 0 THEN $failed ELSE $succeeded END AS status,
    $last_day::TIMESTAMPTZ + INTERVAL 1 HOUR AS next_refresh_available_at,
    NULL AS error_code
FROM fc_accounts AS a, range($days) AS t(d);
