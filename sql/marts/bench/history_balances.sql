-- Benchmark history (bench/bench_history.py): one balance a day per account for the days $from_day..$to_day
-- (offsets from $first_day), at a random time of the day (never after $as_of_cap), fetched ten minutes later
-- (or at $fetched_at when given: a new day landed by a run now); shaped like
-- fc_balances.sql (usd/eur/jpy, cash and credit, available missing now and then, crossing zero).
INSERT INTO fc_balances
WITH generated AS (
    SELECT
        a.account_id,
        a.customer_id,
        CASE WHEN a.category = 'credit' THEN 'credit' ELSE 'cash' END AS balance_type,
        CASE hash(a.account_id) % 20 WHEN 0 THEN 'eur' WHEN 1 THEN 'jpy' ELSE 'usd' END AS currency,
        least($first_day::TIMESTAMPTZ + to_days(CAST(d AS INTEGER))
              + to_seconds(CAST(hash(a.account_id, d) % 86000 AS BIGINT)), $as_of_cap::TIMESTAMPTZ) AS as_of,
        CAST(500000 * sin(d / 7.0 + hash(a.account_id) % 100) + hash(a.account_id, d, 'n') % 200000 - 50000 AS BIGINT)
            AS amount,
        hash(a.account_id, d, 'a') % 20 = 0 AS available_missing
    FROM fc_accounts AS a, range($from_day, $to_day + 1) AS t(d)
),
amounts AS (
    SELECT
        g.*,
        CASE WHEN g.balance_type = 'credit' THEN -abs(g.amount) ELSE g.amount END AS current_minor,
        CASE WHEN g.balance_type = 'cash' AND NOT g.available_missing THEN g.amount - abs(g.amount) // 50 END
            AS available_minor,
        CASE WHEN g.balance_type = 'credit' THEN -abs(g.amount) END AS used_minor,
        CASE WHEN g.currency = 'jpy' THEN 1 ELSE 100 END AS scale
    FROM generated AS g
)
SELECT
    m.account_id, m.customer_id, m.balance_type, m.currency, m.as_of, m.current_minor, m.available_minor,
    m.used_minor,
    CAST(m.current_minor AS DECIMAL(38, 4)) / m.scale,
    CAST(m.available_minor AS DECIMAL(38, 4)) / m.scale,
    CAST(m.used_minor AS DECIMAL(38, 4)) / m.scale,
    coalesce($fetched_at::TIMESTAMPTZ, least(m.as_of + INTERVAL 10 MINUTE, $as_of_cap::TIMESTAMPTZ))
FROM amounts AS m
ORDER BY m.as_of
