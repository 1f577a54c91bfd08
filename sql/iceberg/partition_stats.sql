-- Rows and a content fingerprint per Iceberg partition of one table ({key}: the partition's value as text, ''
-- when unpartitioned), optionally limited by {where} to a range of days so zone maps skip the rest.
-- {table}, {key} and {where} come from the declarations, never from input.
SELECT {key} AS partition_key, count(*) AS row_count, CAST(sum(hash(src)) AS VARCHAR) AS fingerprint
FROM (SELECT * FROM {table} {where}) AS src
GROUP BY ALL
