SELECT file, row_count, fingerprint FROM _fc_parquet_exports WHERE table_name = $table_name
