-- SQLite: record the warehouse's salt (the same value every time; a different one is refused by the caller).
INSERT INTO lifecycle_meta (name, value) VALUES ('salt', :salt) ON CONFLICT (name) DO NOTHING;
