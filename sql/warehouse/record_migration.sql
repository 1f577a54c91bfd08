-- Record one applied migration (inside the migrating transaction).
INSERT INTO fc_schema_migrations (version, name, applied_at) VALUES ($version, $name, $applied_at)
ON CONFLICT (version) DO NOTHING
