-- Rows of a per-customer aggregate (customer_id and no account_id) holding data of the subject's accounts.
customer_id IN (SELECT customer_id FROM forget_customers)
