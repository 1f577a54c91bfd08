-- The funds service's memory: one balance (as_of in unix seconds), kept only when newer than the one known.
INSERT INTO fc_balances VALUES ($account_id, $currency, to_timestamp($as_of), $available_minor, $current_minor)
ON CONFLICT (account_id, currency) DO UPDATE
SET as_of = excluded.as_of, available_minor = excluded.available_minor, current_minor = excluded.current_minor
WHERE excluded.as_of > fc_balances.as_of;
