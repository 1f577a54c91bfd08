-- Any table written as one Parquet file: every row belongs to the file '' (<table>/<table>.parquet).
-- The table placeholder is a quoted identifier checked against the catalog, never user text.
SELECT '' AS __file, * FROM {table}
