-- The funds service's memory: the accounts the attached warehouse observed after $since.
SELECT account_id, customer_id, status, permissions, epoch(observed_at)
FROM fc_warehouse.main.fc_accounts WHERE observed_at > $since;
