-- Total cash available by currency on a daily mart's newest day, over every cash account with a value that day
-- (current where available is missing). {table}: a checked mart name, or a partitioned mart's days ($scope_first..$scope_last).
SELECT d.currency, sum(coalesce(d.available_minor, d.current_minor)) FROM {table} AS d
WHERE d.balance_type = 'cash' AND d.day = (SELECT max(m.day) FROM {table} AS m)
  AND coalesce(d.available_minor, d.current_minor) IS NOT NULL
GROUP BY d.currency ORDER BY d.currency;
