-- Accounts of fc_account_health to relink, per relink_reason (healthy accounts, reason null, are left out).
SELECT relink_reason, count(*) AS accounts
FROM fc_account_health
WHERE relink_reason IS NOT NULL
GROUP BY relink_reason
ORDER BY relink_reason
