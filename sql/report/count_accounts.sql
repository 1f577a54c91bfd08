-- Accounts in the warehouse: none means nothing was ingested yet.
SELECT count(*) FROM fc_accounts;
