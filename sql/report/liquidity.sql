-- Liquidity by currency of a list of customers. Parameter: $customers (VARCHAR[]).
SELECT q.customer_id, q.currency, q.accounts, q.cash_accounts, q.cash_available_minor,
    q.cash_accounts_current_fallback, q.credit_accounts, q.credit_current_minor, q.newest_as_of, q.oldest_as_of
FROM fc_customer_liquidity AS q
WHERE q.customer_id IN (SELECT unnest($customers::VARCHAR[]))
ORDER BY q.customer_id, q.currency;
