-- SQLite: the account events stored after a sequence number, in arrival order (the funds service follows them).
SELECT seq, created, payload FROM stored_events
WHERE seq > :after AND account_id IS NOT NULL
ORDER BY seq LIMIT :limit;
