-- The accounts of a list of customers, every column (so columns added later, e.g. access_stopped_at, come along).
-- Parameter: $customers (VARCHAR[]).
SELECT a.*
FROM fc_accounts AS a
WHERE a.customer_id IN (SELECT unnest($customers::VARCHAR[]))
ORDER BY a.customer_id, a.institution_name, a.display_name, a.account_id;
