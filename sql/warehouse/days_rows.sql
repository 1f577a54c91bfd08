-- The rows of some days of a partitioned table (the days in $days, within $first..$last so zone maps skip the
-- rest), each day's rows together and in a fixed order so each Parquet file's bytes are a deterministic
-- function of its rows. __day leads; the day lives in the folder name, not in the file. {table}, {column} and
-- {order} (`__day` then the declared unique key without the day, or ALL) come from the declarations.
SELECT {column} AS __day, * EXCLUDE ({column})
FROM {table}
WHERE {column} BETWEEN $first AND $last AND list_contains($days, {column})
ORDER BY {order}
