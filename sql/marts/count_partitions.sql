-- Rows per partition of the days $first..$last of a partitioned mart; {table}, {column} from the fixed list.
SELECT {column}, count(*) FROM {table} WHERE {column} BETWEEN $first AND $last GROUP BY {column}
