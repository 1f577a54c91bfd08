-- DuckDB's memory limit as it reports it (e.g. "953.6 MiB"): lowered while Python holds memory outside it (numpy features, the Iceberg publish).
SELECT current_setting('memory_limit')
