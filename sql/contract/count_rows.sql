-- Rows in one table; {table} is a quoted identifier from the table declarations.
SELECT count(*) FROM {table};
