-- Customers the subject's accounts belong to in a table (their per-customer aggregates hold the account's data).
INSERT INTO forget_customers
SELECT DISTINCT customer_id FROM {table}
WHERE customer_id IS NOT NULL AND account_id IN (SELECT account_id FROM forget_accounts);
