-- Drop the record of a mart partition ($day; NULL for the watermark) before it is recorded again.
DELETE FROM _fc_mart_partitions WHERE mart = $mart AND partition_day IS NOT DISTINCT FROM $day
