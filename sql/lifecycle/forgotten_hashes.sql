-- Every subject ever asked to be forgotten (pending requests included: they are skipped from the start).
SELECT DISTINCT subject_hash FROM fc_deletions;
