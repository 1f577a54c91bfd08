-- Whether the marts carry build records: a warehouse from before partitioned marts (0.1.0) has none.
SELECT count(*) > 0 FROM information_schema.tables
WHERE table_schema = 'main' AND table_name = '_fc_mart_partitions'
