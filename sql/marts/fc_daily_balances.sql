-- fc_daily_balances, the days $first..$last (UTC; one day when $first = $last), for the accounts of one hash
-- bucket ($bucket of $buckets). Per (account_id, currency) and day: a key observed that day gets its last row of
-- the day (observed); otherwise its newest earlier row is carried forward while that row's as_of lies at most
-- $carry_days days back (not observed), and after that the key has no row until it is observed again.
-- The row carried into $first comes from the partition of the day before (NOT $seed); when that was never built
-- ($seed: the first day of history), from the last fc_balances row of the $carry_days days before $first.
-- Reads the range's balances and one partition, never all history: each row spans the days from its own day to
-- the next row's (or the carry limit), so no per-day pass is needed.
-- Parameters: $first, $last DATE; $first_start, $last_end, $seed_start TIMESTAMPTZ (start of $first, end of
-- $last, start of $first - $carry_days); $seed_end TIMESTAMPTZ ($first_start when $seed, else $seed_start: an
-- empty range the scan prunes); $carry_days, $bucket, $buckets INTEGER (cast to UBIGINT like hash(): untyped,
-- DuckDB casts every hash to HUGEINT and stops pruning, ten times slower); $seed BOOLEAN; $built_at TIMESTAMPTZ.
INSERT INTO fc_daily_balances
WITH observed AS (  -- the range's balances, each on its UTC day
    SELECT b.account_id, b.customer_id, b.currency, b.balance_type, b.as_of, b.current_minor,
           b.available_minor, b.used_minor, b."current", b.available, b.used,
           (b.as_of AT TIME ZONE 'UTC')::DATE AS from_day, true AS is_observation
    FROM fc_balances AS b
    WHERE b.as_of >= $first_start AND b.as_of < $last_end AND hash(b.account_id) % $buckets::UBIGINT = $bucket::UBIGINT
),
previous AS (  -- the row each key had on the day before the range (observed or carried)
    SELECT d.account_id, d.customer_id, d.currency, d.balance_type, d.as_of, d.current_minor,
           d.available_minor, d.used_minor, d."current", d.available, d.used
    FROM fc_daily_balances AS d
    WHERE d.day = $first - 1 AND NOT $seed AND hash(d.account_id) % $buckets::UBIGINT = $bucket::UBIGINT
    UNION ALL
    SELECT * FROM (
        SELECT b.account_id, b.customer_id, b.currency, b.balance_type, b.as_of, b.current_minor,
               b.available_minor, b.used_minor, b."current", b.available, b.used
        FROM fc_balances AS b
        WHERE b.as_of >= $seed_start AND b.as_of < $seed_end AND hash(b.account_id) % $buckets::UBIGINT = $bucket::UBIGINT
        QUALIFY row_number() OVER (PARTITION BY b.account_id, b.currency ORDER BY b.as_of DESC) = 1
    )
),
rows_in AS (
    SELECT o.* FROM observed AS o
    UNION ALL
    SELECT p.*, $first::DATE AS from_day, false AS is_observation FROM previous AS p
),
spans AS (
    -- One window pass both picks each key's last row of a day (the next row is on a later day) and finds the
    -- day that row holds until: the day before the next row's, at most $carry_days after its as_of.
    SELECT r.*,
           least(coalesce(r.next_day - 1, $last::DATE), (r.as_of AT TIME ZONE 'UTC')::DATE + $carry_days::INTEGER,
                 $last::DATE) AS to_day
    FROM (
        SELECT r.*, lead(r.from_day) OVER (
            PARTITION BY r.account_id, r.currency ORDER BY r.from_day, r.is_observation, r.as_of) AS next_day
        FROM rows_in AS r
    ) AS r
    WHERE r.next_day IS NULL OR r.next_day > r.from_day
),
days AS (
    SELECT s.*, CAST(unnest(generate_series(s.from_day, s.to_day, INTERVAL 1 DAY)) AS DATE) AS day
    FROM spans AS s
    WHERE s.to_day >= s.from_day
)
SELECT account_id, customer_id, currency, day, balance_type,
       is_observation AND day = from_day AS observed, as_of,
       current_minor, available_minor, used_minor, "current", available, used, $built_at::TIMESTAMPTZ AS built_at
FROM days
ORDER BY day;  -- stored by day: reading one day (the next partition, checks, the publish) skips the others
