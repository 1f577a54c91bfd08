-- The first rows of a mart, in its stored order. {table} is a mart name checked against the warehouse's tables.
-- Parameter: $limit (INTEGER).
SELECT * FROM {table} LIMIT $limit;
