-- One account hash shard ($shard of $shards) of an input batch a shard's build reads (_shard_input: the Iceberg
-- scan's Arrow batches) into its in-memory table, by column name. {table} comes from the marts' fixed inputs.
INSERT INTO {table} BY NAME
SELECT * FROM _shard_input WHERE hash(account_id) % $shards::UBIGINT = $shard::UBIGINT
