-- The rows a deletion is about, as temporary tables: the subject hashes of the request, and the accounts and
-- customers they reach (filled by scope_accounts / scope_customers).
CREATE OR REPLACE TEMP TABLE forget_hashes (subject_hash VARCHAR);
CREATE OR REPLACE TEMP TABLE forget_accounts (account_id VARCHAR);
CREATE OR REPLACE TEMP TABLE forget_customers (customer_id VARCHAR);
