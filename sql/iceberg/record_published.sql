-- Record one partition as committed to Iceberg (after the Iceberg commit, so a crash between republishes it).
INSERT OR REPLACE INTO _fc_iceberg_partitions
    (table_name, partition_key, row_count, fingerprint, run_id, snapshot_id, published_at)
VALUES ($table_name, $partition_key, $row_count, $fingerprint, $run_id, $snapshot_id, now())
