-- Rows of a table declared with customer_id whose customer is the subject.
sha256($salt || customer_id) IN (SELECT subject_hash FROM forget_hashes)
