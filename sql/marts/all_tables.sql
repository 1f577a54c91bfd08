-- Every table and view of the main schema, internal (_-prefixed) ones included: the marts need their bookkeeping.
SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'
