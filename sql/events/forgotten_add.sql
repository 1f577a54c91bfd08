-- SQLite: a subject is forgotten from now on (idempotent).
INSERT INTO forgotten_subjects (subject_hash, subject_type) VALUES (:subject_hash, :subject_type)
ON CONFLICT (subject_hash) DO NOTHING;
