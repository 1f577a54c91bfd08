-- fc_balances rows with the Parquet file each belongs to: hive partition by the UTC day of as_of.
SELECT 'as_of_date=' || strftime(make_timestamp(epoch_us(as_of)), '%Y-%m-%d') || '/data.parquet' AS __file,
       *
FROM fc_balances
