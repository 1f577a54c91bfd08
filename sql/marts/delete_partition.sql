-- Empty one partition of a partitioned mart before it is rebuilt (in the same transaction).
-- {table} and {column} come from the fixed list of partitioned marts, never from input.
DELETE FROM {table} WHERE {column} = $day
