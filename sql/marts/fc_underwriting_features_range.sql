-- fc_underwriting_features, several partitions at once: the window ends $first..$last, for the accounts of
-- one hash bucket ($bucket of $buckets), with the same definitions as fc_underwriting_features.sql (which
-- builds one day and is the reference the tests compare this with). Each key gets one row per day of
-- $first - 89 .. $last (null where the day has no value), so every window end of the range comes out of one
-- pass of ROWS frames (far cheaper than RANGE frames over sparse days); the buckets keep memory bounded
-- whatever the number of accounts.
-- Parameters: $first, $last DATE, $seed BOOLEAN (the partition
-- before $first was never built), $seed_end TIMESTAMPTZ (start of $first when $seed, else the earliest
-- timestamp: a bound the scan prunes by, where `$seed AND` would still read every earlier as_of),
-- $bucket, $buckets INTEGER (cast to UBIGINT like hash(): untyped, DuckDB casts every hash to HUGEINT and
-- stops pruning, ten times slower), $built_at TIMESTAMPTZ.
INSERT INTO fc_underwriting_features
WITH windows AS (
    SELECT w.window_days FROM (VALUES (30), (90)) AS w(window_days)
),
ends AS (
    SELECT CAST(unnest(generate_series($first::DATE, $last::DATE, INTERVAL 1 DAY)) AS DATE) AS window_end
),
previous AS (  -- the newest balance per key as of the end of the day before the range
    SELECT f.account_id, f.currency,
           struct_pack(customer_id := f.customer_id, balance_type := f.balance_type,
                       current_minor := f.latest_current_minor, available_minor := f.latest_available_minor,
                       as_of := f.latest_as_of) AS r
    FROM fc_underwriting_features AS f
    WHERE f.window_end = $first - 1 AND f.window_days = 30 AND NOT $seed AND hash(f.account_id) % $buckets::UBIGINT = $bucket::UBIGINT
    UNION ALL
    SELECT b.account_id, b.currency,
           max_by(struct_pack(customer_id := b.customer_id, balance_type := b.balance_type,
                              current_minor := b.current_minor, available_minor := b.available_minor,
                              as_of := b.as_of), b.as_of) AS r
    FROM fc_balances AS b
    WHERE b.as_of < $seed_end AND hash(b.account_id) % $buckets::UBIGINT = $bucket::UBIGINT
    GROUP BY b.account_id, b.currency
),
series AS (  -- the daily values the windows read
    SELECT d.account_id, d.currency, d.day, d.observed, d.current_minor,
           CASE WHEN d.observed AND d.day >= $first THEN
               struct_pack(customer_id := d.customer_id, balance_type := d.balance_type,
                           current_minor := d.current_minor, available_minor := d.available_minor, as_of := d.as_of)
           END AS r
    FROM fc_daily_balances AS d
    WHERE d.day BETWEEN $first - 89 AND $last AND hash(d.account_id) % $buckets::UBIGINT = $bucket::UBIGINT
),
keys AS (  -- every key, the first window end it has a balance for, and whether the days read hold any of its rows
    SELECT k.account_id, k.currency, min(k.since) AS since, bool_or(k.in_series) AS in_series
    FROM (
        SELECT p.account_id, p.currency, $first::DATE AS since, false AS in_series FROM previous AS p
        UNION ALL
        SELECT s.account_id, s.currency, CASE WHEN s.r IS NOT NULL THEN s.day END, true FROM series AS s
    ) AS k
    GROUP BY k.account_id, k.currency
    HAVING min(k.since) IS NOT NULL
),
keyed AS (  -- each key with its newest balance before the range (folded into its first dense day below)
    SELECT k.*, p.r AS before_range
    FROM keys AS k
    LEFT JOIN previous AS p ON p.account_id = k.account_id AND p.currency = k.currency
),
days AS (  -- the longest window before $first, then the range
    SELECT CAST(unnest(generate_series($first::DATE - 89, $last::DATE, INTERVAL 1 DAY)) AS DATE) AS day
),
dense AS (  -- one row per key and day, the value null where the day has none: windows become ROWS frames
    SELECT k.account_id, k.currency, k.since, d.day, s.observed, s.current_minor,
           -- the balance before the range rides on the first day (whose r is null: it is before $first), so
           -- the running last value below falls back to it without another join
           CASE WHEN d.day = $first - 89 THEN k.before_range ELSE s.r END AS r
    FROM keyed AS k
    CROSS JOIN days AS d
    LEFT JOIN series AS s ON s.account_id = k.account_id AND s.currency = k.currency AND s.day = d.day
    WHERE k.in_series
),
framed AS (
    SELECT
        x.account_id, x.currency, x.since, x.day,
        count(x.current_minor) OVER w30 AS v30, count(x.current_minor) OVER w90 AS v90,
        count(*) FILTER (WHERE x.observed) OVER w30 AS o30, count(*) FILTER (WHERE x.observed) OVER w90 AS o90,
        avg(x.current_minor) OVER w30 AS avg30, avg(x.current_minor) OVER w90 AS avg90,
        min(x.current_minor) OVER w30 AS min30, min(x.current_minor) OVER w90 AS min90,
        max(x.current_minor) OVER w30 AS max30, max(x.current_minor) OVER w90 AS max90,
        -- Both percentiles from one aggregate per window: one sorted frame instead of two.
        quantile_cont(x.current_minor, [0.1, 0.9]) OVER w30 AS q30,
        quantile_cont(x.current_minor, [0.1, 0.9]) OVER w90 AS q90,
        stddev_pop(x.current_minor) OVER w30 AS sd30, stddev_pop(x.current_minor) OVER w90 AS sd90,
        count(*) FILTER (WHERE x.current_minor < 0) OVER w30 AS n30,
        count(*) FILTER (WHERE x.current_minor < 0) OVER w90 AS n90,
        last_value(x.r IGNORE NULLS) OVER (
            PARTITION BY x.account_id, x.currency ORDER BY x.day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS newest_in_range
    FROM dense AS x
    WINDOW
        w30 AS (PARTITION BY x.account_id, x.currency ORDER BY x.day ROWS BETWEEN 29 PRECEDING AND CURRENT ROW),
        w90 AS (PARTITION BY x.account_id, x.currency ORDER BY x.day ROWS BETWEEN 89 PRECEDING AND CURRENT ROW)
),
negative_runs AS (  -- maximal runs of consecutive negative days (gaps and islands)
    SELECT n.account_id, n.currency, min(n.day) AS run_start, max(n.day) AS run_end
    FROM (
        SELECT s.account_id, s.currency, s.day,
               s.day - CAST(row_number() OVER (PARTITION BY s.account_id, s.currency ORDER BY s.day) AS INTEGER)
                   AS island
        FROM series AS s
        WHERE s.current_minor < 0
    ) AS n
    GROUP BY n.account_id, n.currency, n.island
),
streaks AS (  -- per window end, each window's longest run (a run begun before the window counts from its first day)
    SELECT n.account_id, n.currency, e.window_end,
           max(least(n.run_end, e.window_end) - greatest(n.run_start, e.window_end - 29) + 1)
               FILTER (WHERE n.run_end >= e.window_end - 29) AS streak30,
           max(least(n.run_end, e.window_end) - greatest(n.run_start, e.window_end - 89) + 1) AS streak90
    FROM negative_runs AS n
    JOIN ends AS e ON n.run_start <= e.window_end AND n.run_end >= e.window_end - 89
    GROUP BY n.account_id, n.currency, e.window_end
),
idle_ends AS (  -- keys with no daily row in the days read (dormant, disconnected): empty windows, no window pass
    SELECT k.account_id, k.currency, k.since, e.window_end AS day, 0 AS v30, 0 AS v90, 0 AS o30, 0 AS o90,
           0 AS n30, 0 AS n90, k.before_range AS newest_in_range
    FROM keyed AS k
    CROSS JOIN ends AS e
    WHERE NOT k.in_series AND e.window_end >= k.since
),
at_ends AS (  -- the range's window ends, each with the newest balance as of its end and its negative streaks
    SELECT f.*, f.newest_in_range AS latest, k.streak30, k.streak90
    FROM (
        SELECT * FROM framed
        WHERE day >= $first AND day >= since  -- a key's rows start on its first day with a balance
        UNION ALL BY NAME  -- the statistics idle_ends lacks are null
        SELECT * FROM idle_ends
    ) AS f
    LEFT JOIN streaks AS k ON k.account_id = f.account_id AND k.currency = f.currency AND k.window_end = f.day
),
rows_out AS (
    SELECT
        f.account_id, f.currency, f.day AS window_end, w.window_days, f.latest,
        CASE w.window_days WHEN 30 THEN f.v30 ELSE f.v90 END AS days_with_value,
        CASE w.window_days WHEN 30 THEN f.o30 ELSE f.o90 END AS days_observed,
        CASE w.window_days WHEN 30 THEN f.avg30 ELSE f.avg90 END AS avg_daily_balance_minor,
        CASE w.window_days WHEN 30 THEN f.min30 ELSE f.min90 END AS min_daily_balance_minor,
        CASE w.window_days WHEN 30 THEN f.max30 ELSE f.max90 END AS max_daily_balance_minor,
        (CASE w.window_days WHEN 30 THEN f.q30 ELSE f.q90 END)[1] AS p10_daily_balance_minor,
        (CASE w.window_days WHEN 30 THEN f.q30 ELSE f.q90 END)[2] AS p90_daily_balance_minor,
        CASE w.window_days WHEN 30 THEN f.sd30 ELSE f.sd90 END AS stddev_daily_balance_minor,
        CASE w.window_days WHEN 30 THEN f.n30 ELSE f.n90 END AS days_negative,
        CASE w.window_days WHEN 30 THEN f.streak30 ELSE f.streak90 END AS longest_negative_streak
    FROM at_ends AS f
    CROSS JOIN windows AS w
)
SELECT
    o.account_id,
    o.latest.customer_id,
    o.currency,
    o.latest.balance_type,
    o.window_days,
    CAST(o.window_end - (o.window_days - 1) AS DATE) AS window_start,
    o.window_end,
    o.days_with_value,
    o.days_observed,
    CAST(o.days_with_value AS DOUBLE) / o.window_days AS coverage,
    o.avg_daily_balance_minor,
    o.min_daily_balance_minor,
    o.max_daily_balance_minor,
    o.p10_daily_balance_minor,
    o.p90_daily_balance_minor,
    o.stddev_daily_balance_minor,
    CASE WHEN o.latest.balance_type = 'cash' THEN o.days_negative END AS days_negative,
    CASE WHEN o.latest.balance_type = 'cash' THEN coalesce(o.longest_negative_streak, 0) END
        AS longest_negative_streak,
    o.latest.current_minor AS latest_current_minor,
    o.latest.available_minor AS latest_available_minor,
    o.latest.as_of AS latest_as_of,
    (epoch_us(least((o.window_end + 1)::TIMESTAMP AT TIME ZONE 'UTC', $built_at::TIMESTAMPTZ))
        - epoch_us(o.latest.as_of)) / 3600e6 AS staleness_hours,
    $built_at::TIMESTAMPTZ AS built_at
FROM rows_out AS o
ORDER BY o.window_end  -- stored by day: reading one day (the next range, checks, the publish) skips the others
