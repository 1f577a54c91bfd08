-- Keys of a table that occur more than once, with up to five of them as text (only duplicates are formatted).
-- {table} and {key_columns} are filled from the checks' fixed allow-list, never from input.
SELECT
    count(*) AS duplicated_keys,
    coalesce(sum(dup.copies), 0) AS rows_involved,
    list_sort(list(concat_ws(' | ', {key_columns})))[1:5] AS sample
FROM (
    SELECT {key_columns}, count(*) AS copies
    FROM {table}
    GROUP BY {key_columns}
    HAVING count(*) > 1
) AS dup
