-- Keys of a table that occur more than once, with up to five of them as text.
-- {table} and {key_columns} are filled from the checks' fixed allow-list, never from input.
SELECT
    count(*) AS duplicated_keys,
    coalesce(sum(dup.copies), 0) AS rows_involved,
    list_sort(list(dup.key_text))[1:5] AS sample
FROM (
    SELECT concat_ws(' | ', {key_columns}) AS key_text, count(*) AS copies
    FROM {table}
    GROUP BY {key_columns}
    HAVING count(*) > 1
) AS dup
