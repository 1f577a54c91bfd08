-- The earliest UTC day in [$history_start, $today] whose partition of fc_daily_balances or
-- fc_underwriting_features is out of date; NULL when none is. A day is out of date when:
--   * its partition was never built;
--   * a balance of that day (UTC day of as_of) was fetched after the partition was built: any writer, any
--     path (ingest, events, a bulk load), a late as_of for a past day. Only rows fetched after the mart's
--     watermark are read, so the cost follows what is new, not history;
--   * it was built before the day ended (it holds the day as far as it went, and features are as of the
--     day's end), or its features were built before its daily partition.
-- A balance before $history_start that is still carried into the first day dirties the first day.
-- Every day after an out-of-date day depends on it (carry-forward, windows): the caller rebuilds to $today.
-- Parameters: $history_start, $today DATE, $carry_days INTEGER, $since TIMESTAMPTZ (marts/since_watermark).
WITH first_day AS (  -- days before the first balance hold nothing: they are not out of date, just empty
    -- min(as_of) first, then its day: a plain min reads the column once, a min of a per-row expression is slow.
    SELECT greatest($history_start::DATE, (SELECT (min(as_of) AT TIME ZONE 'UTC')::DATE FROM fc_balances)) AS day
),
days AS (
    SELECT CAST(unnest(generate_series(f.day, $today::DATE, INTERVAL 1 DAY)) AS DATE) AS day FROM first_day AS f
),
daily AS (
    SELECT partition_day AS day, built_at FROM _fc_mart_partitions
    WHERE mart = 'fc_daily_balances' AND partition_day IS NOT NULL
),
features AS (
    SELECT partition_day AS day, built_at FROM _fc_mart_partitions
    WHERE mart = 'fc_underwriting_features' AND partition_day IS NOT NULL
),
fetched AS (  -- per UTC day of as_of, the newest fetch after the watermark
    SELECT greatest((b.as_of AT TIME ZONE 'UTC')::DATE, $history_start::DATE) AS day, max(b.fetched_at) AS newest
    FROM fc_balances AS b
    WHERE b.fetched_at > $since
      AND b.as_of >= ($history_start::DATE - $carry_days::INTEGER)::TIMESTAMP AT TIME ZONE 'UTC'
    GROUP BY 1
),
stale AS (
    SELECT d.day FROM days AS d
    LEFT JOIN daily AS y ON y.day = d.day
    LEFT JOIN features AS f ON f.day = d.day
    LEFT JOIN fetched AS n ON n.day = d.day
    WHERE y.built_at IS NULL
       OR f.built_at IS NULL
       OR n.newest > least(y.built_at, f.built_at)
       OR least(y.built_at, f.built_at) < (d.day + 1)::TIMESTAMP AT TIME ZONE 'UTC' AND d.day < $today::DATE
       OR f.built_at < y.built_at
)
SELECT min(day) FROM stale
