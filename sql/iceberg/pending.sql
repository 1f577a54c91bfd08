-- The partitions of one table that writes marked since its last publish.
SELECT partition_key FROM _fc_iceberg_pending WHERE table_name = $table_name
