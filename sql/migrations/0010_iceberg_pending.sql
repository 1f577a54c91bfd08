-- issue 21: a publish of the contract tables fingerprints only the partitions whose row counts changed since
-- their last publish, plus the partitions an upsert changed in place, marked here by the write's transaction.
CREATE TABLE IF NOT EXISTS _fc_iceberg_pending (
    table_name VARCHAR NOT NULL,
    partition_key VARCHAR NOT NULL,
    PRIMARY KEY (table_name, partition_key)
);
