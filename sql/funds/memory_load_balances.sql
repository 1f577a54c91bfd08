-- The funds service's memory from the attached warehouse (catalog fc_warehouse): the newest balance per key among
-- those fetched after $since, kept only when newer than the one known.
INSERT INTO fc_balances
SELECT account_id, currency, as_of, available_minor, current_minor
FROM fc_warehouse.main.fc_balances
WHERE fetched_at > $since
QUALIFY row_number() OVER (PARTITION BY account_id, currency ORDER BY as_of DESC) = 1
ON CONFLICT (account_id, currency) DO UPDATE
SET as_of = excluded.as_of, available_minor = excluded.available_minor, current_minor = excluded.current_minor
WHERE excluded.as_of > fc_balances.as_of;
