-- The funds service's memory: drop a forgotten account's balances.
DELETE FROM fc_balances WHERE account_id = $account_id;
