-- Drop a 0.1.0 mart (derived data, rebuilt); {table} comes from the fixed list of marts.
DROP TABLE IF EXISTS {table}
