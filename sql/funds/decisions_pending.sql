-- SQLite: the oldest funds decisions not yet landed in the warehouse.
SELECT decision_id, created, customer_id, answer FROM funds_decisions
WHERE loaded_at IS NULL ORDER BY seq LIMIT :limit;
