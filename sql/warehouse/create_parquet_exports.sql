-- Bookkeeping for export_parquet: what each Parquet file held when it was last written.
-- `file` is the path under <parquet_uri>/<table_name>/ ('' in the stats query means the table's one file).
CREATE TABLE IF NOT EXISTS _fc_parquet_exports (
    table_name VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    row_count BIGINT NOT NULL,
    fingerprint VARCHAR NOT NULL,
    exported_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (table_name, file)
);
