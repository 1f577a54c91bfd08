-- The daily rows the windows of the ends $first..$last read ($first - $lookback .. $last), every key with its hash
-- bucket (of $buckets), sorted by bucket, key and day: one scan and one sort per batch, streamed a bucket at a
-- time (a scan per bucket read the batch's days again for each). Input of pipelines/marts/feature_windows.py.
-- Parameters: $first, $last DATE, $lookback INTEGER (the longest window's days before its end), $buckets INTEGER
-- (cast to UBIGINT like hash(): untyped, DuckDB casts every hash to HUGEINT).
SELECT CAST(hash(d.account_id) % $buckets::UBIGINT AS INTEGER) AS bucket, d.account_id, d.currency, d.day,
       d.observed, d.current_minor, d.customer_id, d.balance_type, d.available_minor, d.as_of
FROM fc_daily_balances AS d
WHERE d.day BETWEEN $first - $lookback::INTEGER AND $last
ORDER BY bucket, d.account_id, d.currency, d.day
