-- Rows per Iceberg partition of one table, reading its partition column alone: a publish compares them with its
-- record to find the partitions worth fingerprinting. {value} is a row's partition value, {key} the text Iceberg
-- prints for it, computed from v once per partition. {table}, {value} and {key} come from the declarations.
SELECT {key} AS partition_key, n AS row_count
FROM (SELECT {value} AS v, count(*) AS n FROM {table} GROUP BY ALL)
