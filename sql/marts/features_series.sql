-- The daily rows the windows of the ends $first..$last read ($first - $lookback .. $last), every key with its hash
-- bucket (of $buckets), sorted by bucket, key and day: one scan and one sort per batch, streamed a bucket at a
-- time (a scan per bucket read the batch's days again for each). Input of pipelines/marts/feature_windows.py.
-- The newest balance's columns (customer, type, available amount, as_of) are read from observed rows only, so a
-- carried-forward row sorts without them (3.2 M rows of a year-old history: 390 MiB sorted instead of 428).
-- Parameters: $first, $last DATE, $lookback INTEGER (the longest window's days before its end), $buckets INTEGER
-- (cast to UBIGINT like hash(): untyped, DuckDB casts every hash to HUGEINT).
SELECT CAST(hash(d.account_id) % $buckets::UBIGINT AS INTEGER) AS bucket, d.account_id, d.currency, d.day,
       d.observed, d.current_minor,
       CASE WHEN d.observed THEN d.customer_id END AS customer_id,
       CASE WHEN d.observed THEN d.balance_type END AS balance_type,
       CASE WHEN d.observed THEN d.available_minor END AS available_minor,
       CASE WHEN d.observed THEN d.as_of END AS as_of
FROM fc_daily_balances AS d
WHERE d.day BETWEEN $first - $lookback::INTEGER AND $last
ORDER BY bucket, d.account_id, d.currency, d.day
