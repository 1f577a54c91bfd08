-- fc_balance_refreshes rows with their Parquet file: hive partition by the UTC day the run started (its
-- earliest requested_at/completed_at), so all rows of a run share one file; a run with no timestamp at
-- all goes to the hive null partition.
WITH run_start AS (
    SELECT run_id, min(least(requested_at, completed_at)) AS started_at
    FROM fc_balance_refreshes
    GROUP BY run_id
)
SELECT 'run_date='
       || coalesce(strftime(make_timestamp(epoch_us(run_start.started_at)), '%Y-%m-%d'),
                   '__HIVE_DEFAULT_PARTITION__')
       || '/data.parquet' AS __file,
       refreshes.*
FROM fc_balance_refreshes AS refreshes
JOIN run_start USING (run_id)
