-- Whether a macro named $name exists for this connection (in the database or as a temporary macro).
SELECT count(*) > 0 AS installed FROM duckdb_functions() WHERE function_name = $name
