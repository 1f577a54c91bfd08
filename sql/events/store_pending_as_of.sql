-- SQLite: per account, the newest balance as_of among the events not yet landed in the warehouse.
SELECT account_id, max(CAST(json_extract(payload, '$.data.object.balance.as_of') AS REAL)) AS newest_as_of
FROM stored_events
WHERE loaded_at IS NULL AND account_id IS NOT NULL
  AND json_extract(payload, '$.data.object.balance.as_of') IS NOT NULL
GROUP BY account_id;
