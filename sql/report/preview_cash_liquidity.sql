-- Total cash available by currency in a liquidity mart (active accounts). {table}: checked mart name.
SELECT q.currency, sum(q.cash_available_minor) FROM {table} AS q
WHERE q.cash_available_minor IS NOT NULL GROUP BY q.currency ORDER BY q.currency;
