-- The newest balance per key as of the end of the day before $first, with its hash bucket (of $buckets): from
-- the features partition of that day (NOT $seed), or from fc_balances when it was never built ($seed; $seed_end
-- bounds the scan, see fc_underwriting_features_range.sql). Input of pipelines/marts/feature_windows.py.
-- Parameters: $first DATE, $seed BOOLEAN, $seed_end TIMESTAMPTZ, $window_days INTEGER (any one of the windows:
-- every window's row holds the same newest balance), $buckets INTEGER.
SELECT CAST(hash(p.account_id) % $buckets::UBIGINT AS INTEGER) AS bucket, p.*
FROM (
    SELECT f.account_id, f.currency, f.customer_id, f.balance_type, f.latest_current_minor AS current_minor,
           f.latest_available_minor AS available_minor, f.latest_as_of AS as_of
    FROM fc_underwriting_features AS f
    WHERE f.window_end = $first - 1 AND f.window_days = $window_days::INTEGER AND NOT $seed
    UNION ALL
    SELECT b.account_id, b.currency, r.customer_id, r.balance_type, r.current_minor, r.available_minor, r.as_of
    FROM (
        SELECT b.account_id, b.currency,
               max_by(struct_pack(customer_id := b.customer_id, balance_type := b.balance_type,
                                  current_minor := b.current_minor, available_minor := b.available_minor,
                                  as_of := b.as_of), b.as_of) AS r
        FROM fc_balances AS b
        WHERE b.as_of < $seed_end
        GROUP BY b.account_id, b.currency
    ) AS b
) AS p
ORDER BY bucket
