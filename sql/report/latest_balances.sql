-- The newest balance per (account, currency) of a list of accounts. Parameter: $accounts (VARCHAR[]).
SELECT l.account_id, l.currency, l.balance_type, l.as_of, l.current_minor, l.available_minor, l.used_minor
FROM fc_latest_balances AS l
WHERE l.account_id IN (SELECT unnest($accounts::VARCHAR[]))
ORDER BY l.account_id, l.currency;
