-- SQLite: delete the funds decisions about forgotten subjects, matched by fc_hash() of the account or customer.
DELETE FROM funds_decisions
WHERE fc_hash(account_id) IN (SELECT subject_hash FROM forgotten_subjects)
   OR fc_hash(customer_id) IN (SELECT subject_hash FROM forgotten_subjects);
