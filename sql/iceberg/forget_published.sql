-- A partition no longer in DuckDB, removed from Iceberg too.
DELETE FROM _fc_iceberg_partitions WHERE table_name = $table_name AND partition_key = $partition_key
