-- Forget what was published of one table (its shape changed): the next publish republishes every partition.
DELETE FROM _fc_iceberg_partitions WHERE table_name = $table_name
