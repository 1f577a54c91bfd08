-- SQLite: the salt and every forgotten subject's hash (a salt with no hash yields one row with a NULL hash).
SELECT m.value AS salt, f.subject_hash
FROM lifecycle_meta AS m LEFT JOIN forgotten_subjects AS f ON TRUE
WHERE m.name = 'salt';
