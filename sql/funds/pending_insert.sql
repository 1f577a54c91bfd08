-- Funds check: one balance not in the warehouse yet; as_of in unix seconds.
INSERT INTO fc_pending_balances VALUES ($account_id, $currency, to_timestamp($as_of), $available_minor, $current_minor);
