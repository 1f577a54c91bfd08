-- The fc_account_health rows of the reported accounts (the mart as last built). Parameter: $accounts (VARCHAR[]).
SELECT account_id, relink_reason, status, expected_deactivation_at, account_numbers_status,
       last_successful_refresh_at, consecutive_failed_refreshes, days_with_balance_30d, built_at
FROM fc_account_health
WHERE account_id IN (SELECT unnest($accounts::VARCHAR[]));
