-- placeholder for the reserved migration 0003 (history); dropped at merge.
SELECT 1;
