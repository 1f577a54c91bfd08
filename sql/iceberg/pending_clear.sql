-- In a publish's record transaction: the marks of the partitions it fingerprinted go.
DELETE FROM _fc_iceberg_pending WHERE table_name = $table_name AND list_contains($keys, partition_key)
