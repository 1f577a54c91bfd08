-- Tables and views of the main schema: the report picks its sources (and sees a warehouse with no marts) from these.
SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY table_name;
