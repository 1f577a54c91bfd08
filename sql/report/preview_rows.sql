-- The first rows of a mart, in its stored order. {table} is a mart name checked against the warehouse's tables, or a
-- partitioned mart's days ($scope_first..$scope_last).
-- Parameter: $limit (INTEGER).
SELECT * FROM {table} LIMIT $limit;
