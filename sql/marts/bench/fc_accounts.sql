-- Benchmark data (bench/bench_marts.py): $accounts synthetic accounts, three per customer; every fifth one a
-- credit card, one in fifty inactive.
INSERT INTO fc_accounts BY NAME  -- by name: columns added later stay null
SELECT
    'fca_' || lpad(CAST(i AS VARCHAR), 8, '0') AS account_id,
    'cus_' || lpad(CAST(i // 3 AS VARCHAR), 8, '0') AS customer_id,
    'customer' AS account_holder_type,
    'Bench Bank' AS institution_name,
    'Account ' || CAST(i AS VARCHAR) AS display_name,
    lpad(CAST(i % 10000 AS VARCHAR), 4, '0') AS last4,
    CASE WHEN i % 5 = 0 THEN 'credit' ELSE 'cash' END AS category,
    CASE WHEN i % 5 = 0 THEN 'credit_card' ELSE 'checking' END AS subcategory,
    CASE WHEN i % 50 = 0 THEN 'inactive' ELSE 'active' END AS status,
    ['balances', 'payment_method'] AS permissions,
    false AS livemode,
    $last_day::TIMESTAMPTZ - INTERVAL 400 DAY AS created_at,
    'succeeded' AS balance_refresh_status,
    $last_day::TIMESTAMPTZ AS balance_refresh_last_attempted_at,
    $last_day::TIMESTAMPTZ + INTERVAL 1 HOUR AS next_refresh_available_at,
    $last_day::TIMESTAMPTZ AS observed_at
FROM range($accounts) AS t(i)
