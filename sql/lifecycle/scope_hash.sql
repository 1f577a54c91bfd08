INSERT INTO forget_hashes VALUES ($subject_hash);
