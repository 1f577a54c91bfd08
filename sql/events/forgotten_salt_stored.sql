-- The salt the event store's forgotten hashes were made with (none until the first deletion request).
SELECT value FROM lifecycle_meta WHERE name = 'salt'
