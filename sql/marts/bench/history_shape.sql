-- The shape of a generated benchmark history (bench/bench_history.py --history): first and last UTC day, accounts.
SELECT min((as_of AT TIME ZONE 'UTC')::DATE), max((as_of AT TIME ZONE 'UTC')::DATE), count(DISTINCT account_id)
FROM fc_balances
