-- Funds check on a read-only warehouse connection: a temporary fc_balances that shadows the warehouse's table for
-- the fc_sufficient_funds macro: this account's rows, plus its balances not landed yet. The file
-- fc_balances.duckdb is catalog fc_balances, hence the three-part name.
CREATE TEMP TABLE fc_balances AS
SELECT account_id, currency, as_of, available_minor, current_minor
FROM fc_balances.main.fc_balances WHERE account_id = $account_id
UNION ALL
SELECT account_id, currency, as_of, available_minor, current_minor FROM fc_pending_balances;
