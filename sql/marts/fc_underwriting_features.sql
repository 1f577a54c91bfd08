-- fc_underwriting_features, one partition: per (account_id, currency) and per window of $short_days and
-- $long_days days ending on $day (UTC), statistics of the daily current_minor over the window's days that have a
-- value in fc_daily_balances (the window's daily partitions only), and the newest balance as of the end of $day.
-- Point in time: nothing with as_of after the day is read. Bounded: a key has rows only while its longest window
-- holds a daily value (every shorter window is a suffix of it), so a dormant key stops $long_days - 1 days after
-- its last daily row and starts again on the day it is observed again.
-- The newest balance comes from the previous partition plus this day's daily rows; when the previous
-- partition was never built ($seed), from fc_balances up to the end of the day. A key absent from the previous
-- partition and holding a value today was observed today, so the previous partition is enough.
-- Run once per hash bucket of accounts ($bucket of $buckets, UBIGINT like hash()), so the grouped statistics
-- and the negative runs of a statement hold a bucket's accounts, not all of them.
-- Parameters: $day DATE, $day_end TIMESTAMPTZ, $seed BOOLEAN, $seed_end TIMESTAMPTZ ($day_end when $seed, else
-- the earliest timestamp: `$seed AND` would still read every earlier as_of), $short_days, $long_days INTEGER
-- (pipelines.contract.tables.FEATURE_WINDOWS), $bucket, $buckets INTEGER, $built_at TIMESTAMPTZ.
INSERT INTO fc_underwriting_features
WITH windows AS (
    SELECT w.window_days, w.short, CAST($day - (w.window_days - 1) AS DATE) AS window_start
    FROM (SELECT $short_days::INTEGER AS window_days, true AS short
          UNION ALL SELECT $long_days::INTEGER, false) AS w
),
latest AS (
    SELECT * FROM (
        SELECT f.account_id, f.customer_id, f.currency, f.balance_type, f.latest_current_minor AS current_minor,
               f.latest_available_minor AS available_minor, f.latest_as_of AS as_of
        FROM fc_underwriting_features AS f
        WHERE f.window_end = $day - 1 AND f.window_days = $short_days::INTEGER AND NOT $seed AND hash(f.account_id) % $buckets::UBIGINT = $bucket::UBIGINT
        UNION ALL
        SELECT d.account_id, d.customer_id, d.currency, d.balance_type, d.current_minor, d.available_minor, d.as_of
        FROM fc_daily_balances AS d
        WHERE d.day = $day AND d.observed AND NOT $seed AND hash(d.account_id) % $buckets::UBIGINT = $bucket::UBIGINT
        UNION ALL
        SELECT b.account_id, b.customer_id, b.currency, b.balance_type, b.current_minor, b.available_minor, b.as_of
        FROM fc_balances AS b
        WHERE b.as_of < $seed_end AND hash(b.account_id) % $buckets::UBIGINT = $bucket::UBIGINT
    )
    QUALIFY row_number() OVER (PARTITION BY account_id, currency ORDER BY as_of DESC) = 1
),
recent AS (  -- the longest window's days; every shorter window is a suffix of it
    SELECT d.account_id, d.currency, d.day, d.observed, d.current_minor
    FROM fc_daily_balances AS d
    WHERE d.day > $day - $long_days::INTEGER AND d.day <= $day AND hash(d.account_id) % $buckets::UBIGINT = $bucket::UBIGINT
),
daily_stats AS (  -- one pass over the longest window; a shorter window is its suffix (FILTER)
    SELECT
        r.account_id,
        r.currency,
        count(r.current_minor) AS v_long,
        count(r.current_minor) FILTER (WHERE r.day > $day - $short_days::INTEGER) AS v_short,
        count(*) FILTER (WHERE r.observed) AS o_long,
        count(*) FILTER (WHERE r.observed AND r.day > $day - $short_days::INTEGER) AS o_short,
        avg(r.current_minor) AS avg_long,
        avg(r.current_minor) FILTER (WHERE r.day > $day - $short_days::INTEGER) AS avg_short,
        min(r.current_minor) AS min_long,
        min(r.current_minor) FILTER (WHERE r.day > $day - $short_days::INTEGER) AS min_short,
        max(r.current_minor) AS max_long,
        max(r.current_minor) FILTER (WHERE r.day > $day - $short_days::INTEGER) AS max_short,
        quantile_cont(r.current_minor, [0.1, 0.9]) AS q_long,
        quantile_cont(r.current_minor, [0.1, 0.9]) FILTER (WHERE r.day > $day - $short_days::INTEGER) AS q_short,
        stddev_pop(r.current_minor) AS sd_long,
        stddev_pop(r.current_minor) FILTER (WHERE r.day > $day - $short_days::INTEGER) AS sd_short,
        count(*) FILTER (WHERE r.current_minor < 0) AS n_long,
        count(*) FILTER (WHERE r.current_minor < 0 AND r.day > $day - $short_days::INTEGER) AS n_short,
        list(r.day ORDER BY r.day) FILTER (WHERE r.current_minor < 0) AS negative_days
    FROM recent AS r
    GROUP BY r.account_id, r.currency
)
SELECT
    l.account_id,
    l.customer_id,
    l.currency,
    l.balance_type,
    w.window_days,
    w.window_start,
    $day::DATE AS window_end,
    coalesce(CASE WHEN w.short THEN s.v_short ELSE s.v_long END, 0) AS days_with_value,
    coalesce(CASE WHEN w.short THEN s.o_short ELSE s.o_long END, 0) AS days_observed,
    CAST(coalesce(CASE WHEN w.short THEN s.v_short ELSE s.v_long END, 0) AS DOUBLE) / w.window_days AS coverage,
    CASE WHEN w.short THEN s.avg_short ELSE s.avg_long END AS avg_daily_balance_minor,
    CASE WHEN w.short THEN s.min_short ELSE s.min_long END AS min_daily_balance_minor,
    CASE WHEN w.short THEN s.max_short ELSE s.max_long END AS max_daily_balance_minor,
    (CASE WHEN w.short THEN s.q_short ELSE s.q_long END)[1] AS p10_daily_balance_minor,
    (CASE WHEN w.short THEN s.q_short ELSE s.q_long END)[2] AS p90_daily_balance_minor,
    CASE WHEN w.short THEN s.sd_short ELSE s.sd_long END AS stddev_daily_balance_minor,
    CASE WHEN l.balance_type = 'cash' THEN coalesce(CASE WHEN w.short THEN s.n_short ELSE s.n_long END, 0) END
        AS days_negative,
    -- The longest run of consecutive negative days in the window: of the key's negative days in the window (sorted),
    -- day minus position is the same along a run, so the largest count of one such value is the longest run; a run
    -- that started before a shorter window counts from the window's first day. One aggregate pass, no window
    -- function (gaps and islands over a sorted partition took a third of the statement).
    CASE WHEN l.balance_type = 'cash' THEN coalesce(list_max(map_values(list_aggregate(list_transform(
        list_filter(s.negative_days, lambda d: d >= w.window_start), lambda d, i: d - CAST(i AS INTEGER)),
        'histogram'))), 0) END AS longest_negative_streak,
    l.current_minor AS latest_current_minor,
    l.available_minor AS latest_available_minor,
    l.as_of AS latest_as_of,
    -- As of the end of the day, or of the build for a day not over yet.
    (epoch_us(least($day_end::TIMESTAMPTZ, $built_at::TIMESTAMPTZ)) - epoch_us(l.as_of)) / 3600e6 AS staleness_hours,
    $built_at::TIMESTAMPTZ AS built_at
FROM latest AS l
JOIN daily_stats AS s  -- the bound: no row for a key whose longest window holds no daily value
    ON s.account_id = l.account_id AND s.currency = l.currency AND s.v_long > 0
CROSS JOIN windows AS w;
