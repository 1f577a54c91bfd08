-- Column names and types of every table in the main schema, in order (one query: information_schema is slow
-- enough that a query per table cost a warehouse open 0.1 s).
SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = 'main' ORDER BY table_name, ordinal_position;
