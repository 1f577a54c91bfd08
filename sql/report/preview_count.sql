-- Rows of a mart. {table} is a mart name checked against the warehouse's tables, or a
-- partitioned mart's days ($scope_first..$scope_last).
SELECT count(*) FROM {table};
