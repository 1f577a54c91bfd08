SELECT DISTINCT table_name FROM _fc_parquet_exports ORDER BY table_name
