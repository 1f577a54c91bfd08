-- 0.2.0, issue 22: fc_underwriting_features is bounded. A key has rows for a window_end only while its longest
-- window (90 days) holds a daily value; the rows built before past that bound (every window with
-- days_with_value 0) are dropped. The rows kept are what the current code builds, so nothing is rebuilt.
DELETE FROM fc_underwriting_features AS f
USING (
    SELECT l.account_id, l.currency, l.window_end
    FROM fc_underwriting_features AS l
    WHERE l.window_days = 90 AND l.days_with_value = 0
) AS past
WHERE f.account_id = past.account_id AND f.currency = past.currency AND f.window_end = past.window_end;
-- The recorded row counts follow (build times stay: the rows kept were built then).
UPDATE _fc_mart_partitions AS p
SET row_count = (SELECT count(*) FROM fc_underwriting_features AS f WHERE f.window_end = p.partition_day)
WHERE p.mart = 'fc_underwriting_features' AND p.partition_day IS NOT NULL;
