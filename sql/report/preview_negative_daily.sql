-- Cash accounts with at least one day below zero in a daily mart (in the days previewed). {table}: a checked
-- mart name, or a partitioned mart's days ($scope_first..$scope_last).
SELECT count(DISTINCT d.account_id) FROM {table} AS d WHERE d.balance_type = 'cash' AND d.current_minor < 0;
