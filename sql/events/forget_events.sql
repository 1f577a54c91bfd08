-- SQLite: delete the stored events about forgotten subjects, matched by fc_hash() (registered by the caller:
-- the salted SHA-256) of the event's account id or of its account holder's customer.
DELETE FROM stored_events
WHERE fc_hash(account_id) IN (SELECT subject_hash FROM forgotten_subjects)
   OR fc_hash(json_extract(payload, '$.data.object.account_holder.customer'))
      IN (SELECT subject_hash FROM forgotten_subjects);
