-- The days $first..$last of a partitioned mart a shard built in its in-memory DuckDB, to stage as its Parquet file.
-- {table} and {column} come from the fixed list of partitioned marts.
SELECT * FROM {table} WHERE {column} BETWEEN $first AND $last ORDER BY {column}
