-- A mart's watermark (see _fc_mart_partitions): NULL when it has none.
SELECT max(built_at) FROM _fc_mart_partitions WHERE mart = $mart AND partition_day IS NULL
