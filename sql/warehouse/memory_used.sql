-- Bytes DuckDB's buffer manager holds now (every tag: tables, sorts, hash tables), to tell Python's share of the
-- process's memory from DuckDB's.
SELECT sum(memory_usage_bytes) FROM duckdb_memory()
