-- Mark every exported file of one table stale (its shape changed), so the next export or repair rewrites them all.
UPDATE _fc_parquet_exports SET fingerprint = 'schema changed' WHERE table_name = $table_name
