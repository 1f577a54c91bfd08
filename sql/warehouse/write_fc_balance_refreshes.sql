-- Upsert refresh outcomes from `batch_rows` by (run_id, account_id): a retried step overwrites its own row
-- (the last one of the batch wins); an identical row is left alone so it is not counted as written.
INSERT INTO fc_balance_refreshes
SELECT run_id, account_id, outcome, requested_at, completed_at, status, next_refresh_available_at, error_code
FROM batch_rows
QUALIFY row_number() OVER (PARTITION BY run_id, account_id ORDER BY __ord DESC) = 1
ON CONFLICT (run_id, account_id) DO UPDATE SET
    outcome = excluded.outcome,
    requested_at = excluded.requested_at,
    completed_at = excluded.completed_at,
    status = excluded.status,
    next_refresh_available_at = excluded.next_refresh_available_at,
    error_code = excluded.error_code
WHERE row(excluded.outcome, excluded.requested_at, excluded.completed_at, excluded.status,
          excluded.next_refresh_available_at, excluded.error_code)
      IS DISTINCT FROM
      row(fc_balance_refreshes.outcome, fc_balance_refreshes.requested_at, fc_balance_refreshes.completed_at,
          fc_balance_refreshes.status, fc_balance_refreshes.next_refresh_available_at,
          fc_balance_refreshes.error_code);
