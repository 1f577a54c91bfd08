-- A quick first pass for unique_key.sql: how many hashes of the key occur more than once. Grouping 8-byte hashes
-- instead of the key's text is about twice as fast; 0 proves every key unique (equal keys hash alike), anything
-- else (a repeated key or a hash collision) is settled by unique_key.sql on the same rows.
-- {table} and {key_columns} are filled from the checks' fixed allow-list, never from input.
SELECT count(*) AS repeated_hashes
FROM (
    SELECT hash({key_columns}) AS key_hash
    FROM {table}
    GROUP BY key_hash
    HAVING count(*) > 1
) AS repeated
