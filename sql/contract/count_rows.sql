-- Rows in one contract table; {table} comes from the fixed list of contract tables.
SELECT count(*) FROM {table};
