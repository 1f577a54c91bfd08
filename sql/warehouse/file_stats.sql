-- Rows and a content fingerprint per Parquet file of one table (the source is a files_* query).
SELECT __file, count(*) AS row_count, CAST(sum(hash(src)) AS VARCHAR) AS fingerprint
FROM ({source}) AS src
GROUP BY __file
