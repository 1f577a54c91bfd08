-- issue 21: the Parquet mirror is replaced by Iceberg tables; its bookkeeping goes, the publish's comes.
-- A 0.2.0 warehouse's parquet/ folder is removed by the first open after every row is committed to Iceberg.
DROP TABLE IF EXISTS _fc_parquet_exports;
CREATE TABLE IF NOT EXISTS _fc_iceberg_partitions (
    table_name VARCHAR NOT NULL,
    partition_key VARCHAR NOT NULL,
    row_count BIGINT NOT NULL,
    fingerprint VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    snapshot_id BIGINT,
    published_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (table_name, partition_key)
);
