-- Whether a mart partition has been built (its previous day's partition decides how a day is seeded).
SELECT count(*) > 0 FROM _fc_mart_partitions WHERE mart = $mart AND partition_day = $day
