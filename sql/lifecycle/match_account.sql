-- Rows of a table declared with account_id that are about the subject.
account_id IN (SELECT account_id FROM forget_accounts)
    OR sha256($salt || account_id) IN (SELECT subject_hash FROM forget_hashes)
