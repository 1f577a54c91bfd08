-- Every account the warehouse tracks, for a reconciliation after an outage.
SELECT account_id FROM fc_accounts ORDER BY account_id;
