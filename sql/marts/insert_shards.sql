-- Every shard's staged rows of a sharded build ($files: their Parquet files) into the mart, by column name, for the
-- days $first..$last just emptied (same transaction), stored by day like the single build's rows.
-- {table} and {column} come from the fixed list of partitioned marts.
INSERT INTO {table} BY NAME
SELECT * FROM read_parquet($files) WHERE {column} BETWEEN $first AND $last ORDER BY {column}
