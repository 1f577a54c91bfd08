-- Whether a subject hash was ever asked to be forgotten.
SELECT count(*) > 0 FROM fc_deletions WHERE subject_hash = $subject_hash;
