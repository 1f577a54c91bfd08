-- The distinct non-null values of one column with a closed value set; {table} and {column} are quoted
-- identifiers from the table declarations, never input.
SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY 1
