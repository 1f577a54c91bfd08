-- The warehouse's schema version: the highest migration applied.
SELECT max(version) FROM fc_schema_migrations
