-- Benchmark data (bench/bench_marts.py): $days rows per account ending on $last_day, one a day at a random
-- time; one account in ten is read every other day (gaps to carry forward). 90% usd, 5% eur, 5% jpy.
-- Cash rows: available 2% below current, missing on one row in twenty; credit rows: current = used < 0.
INSERT INTO fc_balances
WITH generated AS (
    SELECT
        a.account_id,
        a.customer_id,
        CASE WHEN a.category = 'credit' THEN 'credit' ELSE 'cash' END AS balance_type,
        CASE hash(a.account_id) % 20 WHEN 0 THEN 'eur' WHEN 1 THEN 'jpy' ELSE 'usd' END AS currency,
        $last_day::TIMESTAMPTZ
            - to_days(CAST(($days - 1 - d) * (CASE WHEN hash(a.account_id) % 10 = 3 THEN 2 ELSE 1 END) AS INTEGER))
            + to_seconds(CAST(hash(a.account_id, d) % 86400 AS BIGINT)) AS as_of,
        -- a daily cycle plus noise, crossing zero now and then: enough shape for the timings
        CAST(500000 * sin(d / 7.0 + hash(a.account_id) % 100) + hash(a.account_id, d, 'n') % 200000 - 50000 AS BIGINT)
            AS amount,
        hash(a.account_id, d, 'a') % 20 = 0 AS available_missing
    FROM fc_accounts AS a, range($days) AS t(d)
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
    m.account_id,
    m.customer_id,
    m.balance_type,
    m.currency,
    m.as_of,
    m.current_minor,
    m.available_minor,
    m.used_minor,
    CAST(m.current_minor AS DECIMAL(38, 4)) / m.scale,
    CAST(m.available_minor AS DECIMAL(38, 4)) / m.scale,
    CAST(m.used_minor AS DECIMAL(38, 4)) / m.scale,
    $last_day::TIMESTAMPTZ + INTERVAL 1 HOUR
FROM amounts AS m
