-- Tables and views an export or a row count may name: the main schema minus internal (_-prefixed) ones.
SELECT table_name
FROM information_schema.tables
WHERE table_schema = 'main' AND NOT starts_with(table_name, '_')
ORDER BY table_name
