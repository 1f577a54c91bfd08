-- placeholder migration (drop at merge)
SELECT 1;
