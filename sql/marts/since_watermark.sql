-- The older of the two partitioned marts' watermarks (NULL when either has none): fc_balances rows
-- fetched on or before it are already in every partition they belong to.
SELECT CASE WHEN count(*) = 2 THEN min(watermark) END
FROM (
    SELECT mart, max(built_at) AS watermark FROM _fc_mart_partitions
    WHERE mart IN ('fc_daily_balances', 'fc_underwriting_features') AND partition_day IS NULL
    GROUP BY mart
)
