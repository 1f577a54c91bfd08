-- Accounts with at least one negative day in a features mart's longest, newest window. {table}: a checked mart name, or a partitioned mart's days ($scope_first..$scope_last).
SELECT count(DISTINCT f.account_id) FROM {table} AS f
WHERE f.days_negative > 0 AND f.window_days = (SELECT max(w.window_days) FROM {table} AS w)
  AND f.window_end = (SELECT max(e.window_end) FROM {table} AS e);
