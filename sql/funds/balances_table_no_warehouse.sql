-- Funds check without a warehouse file yet: only the balances not landed.
CREATE TEMP TABLE fc_balances AS
SELECT account_id, currency, as_of, available_minor, current_minor FROM fc_pending_balances;
