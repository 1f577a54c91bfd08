-- Daily balances of a list of accounts over a window of days; a day without a row is a gap, not zero.
-- Parameters: $accounts (VARCHAR[]), $first_day, $last_day (DATE, both included).
SELECT d.account_id, d.currency, d.day, d.balance_type, d.observed, d.current_minor, d.available_minor, d.used_minor
FROM fc_daily_balances AS d
WHERE d.account_id IN (SELECT unnest($accounts::VARCHAR[]))
  AND d.day BETWEEN $first_day::DATE AND $last_day::DATE
ORDER BY d.account_id, d.currency, d.day;
