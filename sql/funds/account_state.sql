-- Funds check: what the warehouse knows of an account (no row: never seen).
SELECT status, permissions FROM fc_accounts WHERE account_id = $account_id;
