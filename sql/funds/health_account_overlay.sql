-- Funds check warnings: a newer state of the account (a refresh just made, an event not landed yet), registered
-- as funds_health_account, replaces the warehouse's row in the temporary fc_accounts.
DELETE FROM temp.fc_accounts;
INSERT INTO temp.fc_accounts BY NAME SELECT * FROM funds_health_account;
