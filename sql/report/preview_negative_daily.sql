-- Cash accounts with at least one day below zero in a daily mart. {table}: checked mart name.
SELECT count(DISTINCT d.account_id) FROM {table} AS d WHERE d.balance_type = 'cash' AND d.current_minor < 0;
