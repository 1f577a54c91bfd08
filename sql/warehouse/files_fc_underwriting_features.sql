-- fc_underwriting_features rows of the window ends $first..$last with their Parquet file: one folder per
-- window_end. The partition column lives in the folder name (hive), not in the file.
SELECT 'window_end=' || strftime(window_end, '%Y-%m-%d') || '/data.parquet' AS __file, * EXCLUDE (window_end)
FROM fc_underwriting_features
WHERE window_end BETWEEN $first AND $last
