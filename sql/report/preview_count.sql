-- Rows of a mart. {table} is a mart name checked against the warehouse's tables.
SELECT count(*) FROM {table};
