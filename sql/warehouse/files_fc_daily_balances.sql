-- fc_daily_balances rows of the days $first..$last with their Parquet file: one folder per UTC day. The
-- partition column lives in the folder name (hive), not in the file.
SELECT 'day=' || strftime(day, '%Y-%m-%d') || '/data.parquet' AS __file, * EXCLUDE (day)
FROM fc_daily_balances
WHERE day BETWEEN $first AND $last
