-- Funds check warnings: the warehouse's fc_accounts row of the account, into the temporary fc_accounts that shadows
-- it (BY NAME: a file from before migration 0007 leaves the newer columns null).
INSERT INTO temp.fc_accounts BY NAME
SELECT * FROM fc_balances.main.fc_accounts WHERE account_id = $account_id;
