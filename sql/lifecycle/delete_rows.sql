-- Remove the subject's rows from a declared table; the condition comes from sql/lifecycle/match_*.sql.
DELETE FROM {table} WHERE {condition};
