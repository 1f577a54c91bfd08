-- Rows of {table} (declared with customer_id) about the subject or holding its accounts' data.
customer_id IN (SELECT customer_id FROM forget_customers)
    OR sha256($salt || customer_id) IN (SELECT subject_hash FROM forget_hashes)
