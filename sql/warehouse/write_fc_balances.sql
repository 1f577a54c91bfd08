-- Insert balances from `batch_rows`; an existing (account_id, as_of, currency) is never touched and,
-- inside the batch, the first row (__ord) of a key wins.
INSERT OR IGNORE INTO fc_balances
SELECT account_id, customer_id, balance_type, currency, as_of, current_minor, available_minor, used_minor,
       "current", available, used, fetched_at
FROM batch_rows
QUALIFY row_number() OVER (PARTITION BY account_id, as_of, currency ORDER BY __ord) = 1;
