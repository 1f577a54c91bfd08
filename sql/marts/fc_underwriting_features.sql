-- fc_underwriting_features: per (account_id, currency, window_days) for windows of 30 and 90 days ending on
-- the build day (inclusive), statistics of the daily current_minor over the days of the window that have a
-- value in fc_daily_balances, plus the latest balance. Reads the marts fc_daily_balances and
-- fc_latest_balances. Parameter: $build_at (TIMESTAMPTZ).
CREATE OR REPLACE TABLE fc_underwriting_features AS
WITH params AS (
    SELECT ($build_at::TIMESTAMPTZ AT TIME ZONE 'UTC')::DATE AS build_day
),
windows AS (
    SELECT w.window_days, p.build_day, p.build_day - (w.window_days - 1) AS window_start
    FROM (VALUES (30), (90)) AS w(window_days), params AS p
),
recent AS (  -- the longest window's days; every shorter window is a suffix of it
    SELECT d.account_id, d.currency, d.day, d.observed, d.current_minor
    FROM fc_daily_balances AS d, params AS p
    WHERE d.day BETWEEN (SELECT min(w.window_start) FROM windows AS w) AND p.build_day
),
daily_stats AS (
    SELECT
        r.account_id,
        r.currency,
        w.window_days,
        any_value(w.window_start) AS window_start,
        any_value(w.build_day) AS window_end,
        count(r.current_minor) AS days_with_value,
        count(*) FILTER (WHERE r.observed) AS days_observed,
        avg(r.current_minor) AS avg_daily_balance_minor,
        min(r.current_minor) AS min_daily_balance_minor,
        max(r.current_minor) AS max_daily_balance_minor,
        quantile_cont(r.current_minor, 0.1) AS p10_daily_balance_minor,
        quantile_cont(r.current_minor, 0.9) AS p90_daily_balance_minor,
        stddev_pop(r.current_minor) AS stddev_daily_balance_minor,
        count(*) FILTER (WHERE r.current_minor < 0) AS days_negative
    FROM recent AS r
    JOIN windows AS w ON r.day >= w.window_start
    GROUP BY r.account_id, r.currency, w.window_days
),
negative_runs AS (  -- maximal runs of consecutive negative days (gaps and islands) in the longest window
    SELECT n.account_id, n.currency, min(n.day) AS run_start, max(n.day) AS run_end
    FROM (
        SELECT
            r.account_id,
            r.currency,
            r.day,
            r.day - CAST(row_number() OVER (PARTITION BY r.account_id, r.currency ORDER BY r.day) AS INTEGER)
                AS island
        FROM recent AS r
        WHERE r.current_minor < 0
    ) AS n
    GROUP BY n.account_id, n.currency, n.island
),
streaks AS (  -- a run that started before a shorter window counts only from the window's first day
    SELECT
        n.account_id,
        n.currency,
        w.window_days,
        max(n.run_end - greatest(n.run_start, w.window_start) + 1) AS longest_negative_streak
    FROM negative_runs AS n
    JOIN windows AS w ON n.run_end >= w.window_start
    GROUP BY n.account_id, n.currency, w.window_days
)
SELECT
    s.account_id,
    l.customer_id,
    s.currency,
    l.balance_type,
    s.window_days,
    s.window_start,
    s.window_end,
    s.days_with_value,
    s.days_observed,
    CAST(s.days_with_value AS DOUBLE) / s.window_days AS coverage,
    s.avg_daily_balance_minor,
    s.min_daily_balance_minor,
    s.max_daily_balance_minor,
    s.p10_daily_balance_minor,
    s.p90_daily_balance_minor,
    s.stddev_daily_balance_minor,
    CASE WHEN l.balance_type = 'cash' THEN s.days_negative END AS days_negative,
    CASE WHEN l.balance_type = 'cash' THEN coalesce(k.longest_negative_streak, 0) END AS longest_negative_streak,
    l.current_minor AS latest_current_minor,
    l.available_minor AS latest_available_minor,
    l.as_of AS latest_as_of,
    (epoch_us($build_at::TIMESTAMPTZ) - epoch_us(l.as_of)) / 3600e6 AS staleness_hours,
    $build_at::TIMESTAMPTZ AS built_at
FROM daily_stats AS s
LEFT JOIN streaks AS k
    ON k.account_id = s.account_id AND k.currency = s.currency AND k.window_days = s.window_days
LEFT JOIN fc_latest_balances AS l
    ON l.account_id = s.account_id AND l.currency = s.currency
ORDER BY s.account_id, s.currency, s.window_days;
