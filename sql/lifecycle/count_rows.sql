-- Rows of {table} a deletion would remove; {condition} is built from sql/lifecycle/match_*.sql.
SELECT count(*) FROM {table} WHERE {condition};
