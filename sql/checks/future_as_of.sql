-- Rows whose as_of lies after $latest_allowed (now plus a clock-skew allowance).
-- {table} is filled from the checks' fixed allow-list.
SELECT count(*) AS future_rows, max(t.as_of) AS latest_as_of
FROM {table} AS t
WHERE t.as_of > $latest_allowed
