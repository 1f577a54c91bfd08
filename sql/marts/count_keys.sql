-- Roughly how many (account, currency) keys the marts hold: sizes the hash buckets of a features range build.
SELECT greatest((SELECT count(*) FROM fc_latest_balances), (SELECT count(*) FROM fc_accounts))
