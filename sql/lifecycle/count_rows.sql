-- Rows of a declared table a deletion would remove; the condition comes from sql/lifecycle/match_*.sql.
SELECT count(*) FROM {table} WHERE {condition};
