-- The declared columns of the rows of some partitions ($keys), after an optional day-range condition that lets
-- zone maps skip the other days. Placeholders come from the declarations, never from input.
SELECT {columns} FROM {table} {where_and} list_contains($keys, {key})
