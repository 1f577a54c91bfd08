-- What the last publish of one table committed, per partition.
SELECT partition_key, row_count, fingerprint FROM _fc_iceberg_partitions WHERE table_name = $table_name
