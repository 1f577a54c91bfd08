-- Empty one account hash shard ($shard of $shards) of the partitions $first..$last before it is rebuilt (same
-- transaction); the other shards' rows stay. {table} and {column} come from the fixed list of partitioned marts.
DELETE FROM {table}
WHERE {column} BETWEEN $first AND $last AND hash(account_id) % $shards::UBIGINT = $shard::UBIGINT
