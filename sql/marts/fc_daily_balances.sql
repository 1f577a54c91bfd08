-- fc_daily_balances, one partition: per (account_id, currency) the day $day (UTC). A key observed that day
-- gets its last row of the day (observed); otherwise the previous day's row is carried forward while its
-- as_of lies at most $carry_days days back (not observed). The previous day comes from the previous
-- partition; when that was never built ($seed: the first day of history), from the last fc_balances row of
-- the $carry_days days before. Only one day of balances and one partition are read.
-- Parameters: $day DATE, $day_start / $day_end / $seed_start TIMESTAMPTZ, $carry_days INTEGER,
-- $seed BOOLEAN, $built_at TIMESTAMPTZ.
INSERT INTO fc_daily_balances
WITH observed_today AS (
    SELECT b.account_id, b.customer_id, b.currency, b.balance_type, b.as_of, b.current_minor,
           b.available_minor, b.used_minor, b."current", b.available, b.used
    FROM fc_balances AS b
    WHERE b.as_of >= $day_start AND b.as_of < $day_end
    QUALIFY row_number() OVER (PARTITION BY b.account_id, b.currency ORDER BY b.as_of DESC) = 1
),
previous AS (
    SELECT d.account_id, d.customer_id, d.currency, d.balance_type, d.as_of, d.current_minor,
           d.available_minor, d.used_minor, d."current", d.available, d.used
    FROM fc_daily_balances AS d
    WHERE d.day = $day - 1 AND NOT $seed
    UNION ALL
    SELECT * FROM (
        SELECT b.account_id, b.customer_id, b.currency, b.balance_type, b.as_of, b.current_minor,
               b.available_minor, b.used_minor, b."current", b.available, b.used
        FROM fc_balances AS b
        WHERE $seed AND b.as_of >= $seed_start AND b.as_of < $day_start
        QUALIFY row_number() OVER (PARTITION BY b.account_id, b.currency ORDER BY b.as_of DESC) = 1
    )
),
carried AS (
    SELECT p.*
    FROM previous AS p
    ANTI JOIN observed_today AS t ON t.account_id = p.account_id AND t.currency = p.currency
    WHERE $day - (p.as_of AT TIME ZONE 'UTC')::DATE <= $carry_days
)
SELECT account_id, customer_id, currency, $day::DATE AS day, balance_type, true AS observed, as_of,
       current_minor, available_minor, used_minor, "current", available, used, $built_at::TIMESTAMPTZ AS built_at
FROM observed_today
UNION ALL
SELECT account_id, customer_id, currency, $day::DATE AS day, balance_type, false AS observed, as_of,
       current_minor, available_minor, used_minor, "current", available, used, $built_at::TIMESTAMPTZ AS built_at
FROM carried;
