-- Keys of a table that occur more than once: counts only, never a key (keys hold account ids, and Dagster's run
-- history must not need scrubbing after a deletion request).
-- {table} and {key_columns} are filled from the checks' fixed allow-list, never from input.
SELECT
    count(*) AS duplicated_keys,
    coalesce(sum(dup.copies), 0) AS rows_involved
FROM (
    SELECT {key_columns}, count(*) AS copies
    FROM {table}
    GROUP BY {key_columns}
    HAVING count(*) > 1
) AS dup
