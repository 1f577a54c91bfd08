-- Record that a mart partition ($day; NULL for a mart's watermark) was built at $built_at with $row_count rows.
INSERT INTO _fc_mart_partitions (mart, partition_day, built_at, row_count)
SELECT $mart, $day, $built_at, $row_count
