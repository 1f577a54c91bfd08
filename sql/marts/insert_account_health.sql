-- Refill fc_account_health (the caller empties it first, in the same transaction) with the rows of
-- fc_account_health.sql, substituted below, its parameters bound as they are there.
INSERT INTO fc_account_health
{rows};
