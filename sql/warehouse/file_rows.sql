-- The rows of the given Parquet files, grouped by file, in a fixed order so each file's bytes are a
-- deterministic function of its rows. {order} is `__file` then the table's declared unique key (or ALL), from
-- the declarations, never from input.
SELECT * FROM ({source}) AS src WHERE list_contains($files, __file) ORDER BY {order}
