-- The rows of one day of a partitioned table ($day), in a fixed order so its Parquet file's bytes are a
-- deterministic function of its rows. The day lives in the folder name, not in the file. {table}, {column}
-- and {order} (the declared unique key without the day, or ALL) come from the declarations, never from input.
SELECT * EXCLUDE ({column}) FROM {table} WHERE {column} = $day ORDER BY {order}
