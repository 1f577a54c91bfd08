-- Rows of one partition of a partitioned mart; {table} and {column} come from the fixed list.
SELECT count(*) FROM {table} WHERE {column} = $day
