-- Empty the partitions $first..$last of a partitioned mart before they are rebuilt (same transaction).
-- {table} and {column} come from the fixed list of partitioned marts, never from input.
DELETE FROM {table} WHERE {column} BETWEEN $first AND $last
