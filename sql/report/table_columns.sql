-- Column names of one table or view of the main schema, in order: a preview adapts to the columns a mart has.
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'main' AND table_name = $table ORDER BY ordinal_position;
