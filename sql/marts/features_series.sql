-- The daily rows the windows of the ends $first..$last read ($first - 89 .. $last), for one hash bucket of
-- keys, sorted by key and day. Input of pipelines/feature_windows.py.
-- Parameters: $first, $last DATE, $bucket, $buckets INTEGER (cast to UBIGINT like hash(), see
-- fc_underwriting_features_range.sql).
SELECT d.account_id, d.currency, d.day, d.observed, d.current_minor, d.customer_id, d.balance_type,
       d.available_minor, d.as_of
FROM fc_daily_balances AS d
WHERE d.day BETWEEN $first - 89 AND $last AND hash(d.account_id) % $buckets::UBIGINT = $bucket::UBIGINT
ORDER BY d.account_id, d.currency, d.day
