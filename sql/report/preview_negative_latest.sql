-- Cash accounts whose newest balance is below zero (a latest-balance mart has one day per account).
-- {table}: checked mart name.
SELECT count(DISTINCT l.account_id) FROM {table} AS l WHERE l.balance_type = 'cash' AND l.current_minor < 0;
