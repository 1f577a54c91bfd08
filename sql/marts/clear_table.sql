-- Empty an unpartitioned mart before it is refilled (in the same transaction); {table} is from the fixed list.
DELETE FROM {table}
