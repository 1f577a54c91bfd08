-- Days of a partitioned mart built after their last publish (or never published): a build whose publish a
-- crash stopped, republished by the next build's publish whatever days that one covers.
SELECT DISTINCT built.partition_day
FROM _fc_mart_partitions AS built
LEFT JOIN _fc_iceberg_partitions AS published
    ON published.table_name = $mart AND published.partition_key = CAST(built.partition_day AS VARCHAR)
WHERE built.mart = $mart AND built.partition_day IS NOT NULL
  AND (published.published_at IS NULL OR built.built_at > published.published_at)
ORDER BY 1
