INSERT OR REPLACE INTO _fc_parquet_exports (table_name, file, row_count, fingerprint, exported_at)
VALUES ($table_name, $file, $row_count, $fingerprint, now())
