-- The oldest of the partitioned marts' watermarks (NULL when any has none): fc_balances rows fetched on or
-- before it are already in every partition they belong to. $marts VARCHAR[]: the partitioned marts (their specs).
SELECT CASE WHEN count(*) = len($marts::VARCHAR[]) THEN min(watermark) END
FROM (
    SELECT mart, max(built_at) AS watermark FROM _fc_mart_partitions
    WHERE list_contains($marts::VARCHAR[], mart) AND partition_day IS NULL
    GROUP BY mart
)
