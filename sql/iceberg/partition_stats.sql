-- Rows and a content fingerprint per Iceberg partition of one table, optionally limited by {where} to a range of
-- days (zone maps skip the rest) or a list of partitions. Grouped by the row's partition value ({value}; NULL when
-- unpartitioned), the key text ({key}, from v: '' when unpartitioned) computed once per partition: the
-- fingerprint of a day's rows is the same as when the key was computed per row. {table}, {value}, {key} and
-- {where} come from the declarations, never from input.
SELECT {key} AS partition_key, row_count, fingerprint
FROM (SELECT {value} AS v, count(*) AS row_count, CAST(sum(hash(src)) AS VARCHAR) AS fingerprint
      FROM (SELECT * FROM {table} {where}) AS src
      GROUP BY v)
