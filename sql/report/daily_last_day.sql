-- The newest day the daily balances reach: the report's window ends there.
SELECT max(d.day) FROM fc_daily_balances AS d;
