-- fc_daily_balances: per (account_id, currency, day) from the first UTC day with a row to the build day, the
-- values of the last row with as_of on or before the end of that day (carried forward over days without
-- rows); observed = the day had a row of its own. Parameter: $build_at (TIMESTAMPTZ).
--
-- One window pass, no join: a row that is the last of its UTC day (the next row falls on a later day) owns
-- every day from its own up to the day before the next row's day (or up to the build day), and is expanded
-- over them with generate_series.
CREATE OR REPLACE TABLE fc_daily_balances AS
WITH params AS (
    SELECT ($build_at::TIMESTAMPTZ AT TIME ZONE 'UTC')::DATE AS build_day
),
rows_with_next AS (
    SELECT
        b.*,
        (b.as_of AT TIME ZONE 'UTC')::DATE AS row_day,
        lead((b.as_of AT TIME ZONE 'UTC')::DATE)
            OVER (PARTITION BY b.account_id, b.currency ORDER BY b.as_of) AS next_row_day
    FROM fc_balances AS b
),
last_of_day AS (
    SELECT r.*, p.build_day
    FROM rows_with_next AS r, params AS p
    WHERE r.next_row_day IS DISTINCT FROM r.row_day
      AND r.row_day <= p.build_day
),
expanded AS (
    SELECT
        d.*,
        unnest(generate_series(
            d.row_day, least(coalesce(d.next_row_day - 1, d.build_day), d.build_day), INTERVAL 1 DAY
        ))::DATE AS day
    FROM last_of_day AS d
)
SELECT
    e.account_id,
    e.customer_id,
    e.currency,
    e.day,
    e.balance_type,
    e.day = e.row_day AS observed,
    e.as_of,
    e.current_minor,
    e.available_minor,
    e.used_minor,
    e."current",
    e.available,
    e.used,
    $build_at::TIMESTAMPTZ AS built_at
FROM expanded AS e
ORDER BY e.account_id, e.currency, e.day;
