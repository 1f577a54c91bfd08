-- Which of a list of customers have balance rows: tells "unknown customer" from "customer with no accounts".
-- Parameter: $customers (VARCHAR[]).
SELECT DISTINCT b.customer_id
FROM fc_balances AS b
WHERE b.customer_id IN (SELECT unnest($customers::VARCHAR[]));
