-- In a write's transaction: mark the partitions of the rows in {view} ({key}: a row's partition key) as changed
-- since their last publish, so the next publish fingerprints them although their row counts may not have moved.
INSERT OR IGNORE INTO _fc_iceberg_pending
SELECT DISTINCT $table_name, {key} FROM {view}
