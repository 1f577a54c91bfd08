-- Total cash available by currency over active cash accounts' newest balances (current where available is
-- missing), as fc_customer_liquidity counts it. {table}: checked mart name.
SELECT l.currency, sum(coalesce(l.available_minor, l.current_minor)) FROM {table} AS l
WHERE l.balance_type = 'cash' AND l.account_status = 'active' AND coalesce(l.available_minor, l.current_minor) IS NOT NULL
GROUP BY l.currency ORDER BY l.currency;
