-- Accounts of the subject found in a table: the account itself, or every account its customer holds.
-- The table comes from the declarations (a table with account_id and customer_id), never from input.
INSERT INTO forget_accounts
SELECT DISTINCT account_id FROM {table}
WHERE account_id IS NOT NULL
  AND (sha256($salt || account_id) IN (SELECT subject_hash FROM forget_hashes)
       OR sha256($salt || customer_id) IN (SELECT subject_hash FROM forget_hashes));
