DELETE FROM _fc_parquet_exports WHERE table_name = $table_name AND file = $file
