-- Remove the subject's rows from {table}; {condition} is built from sql/lifecycle/match_*.sql.
DELETE FROM {table} WHERE {condition};
