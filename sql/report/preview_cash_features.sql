-- Total cash available by currency from a features mart's latest balances (one window, so each account counts
-- once; current where available is missing). {table}: a checked mart name, or a partitioned mart's days ($scope_first..$scope_last).
SELECT f.currency, sum(coalesce(f.latest_available_minor, f.latest_current_minor)) FROM {table} AS f
WHERE f.balance_type = 'cash' AND f.window_days = (SELECT min(w.window_days) FROM {table} AS w)
  AND f.window_end = (SELECT max(e.window_end) FROM {table} AS e)
  AND coalesce(f.latest_available_minor, f.latest_current_minor) IS NOT NULL
GROUP BY f.currency ORDER BY f.currency;
