-- The funds service's memory: the newest fetched_at and observed_at the attached warehouse holds.
SELECT (SELECT max(fetched_at) FROM fc_warehouse.main.fc_balances),
       (SELECT max(observed_at) FROM fc_warehouse.main.fc_accounts);
