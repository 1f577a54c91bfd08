-- Cash rows must not carry used, credit rows must not carry available.
SELECT count(*) FROM fc_balances
WHERE (balance_type = 'cash' AND used_minor IS NOT NULL) OR (balance_type = 'credit' AND available_minor IS NOT NULL);
