-- The declared columns of the rows of some partitions of a partitioned table, with each row's partition value
-- ({value}) and sorted by it, so each partition is one contiguous slice of the result; within a partition
-- by the declared key ({order}), so a file's bytes depend only on its rows. {where}: a day range zone maps use,
-- and/or the list of partitions ($keys). Placeholders come from the declarations, never from input.
SELECT {columns}, {value} AS __fc_partition FROM {table} WHERE {where} ORDER BY __fc_partition, {order}
