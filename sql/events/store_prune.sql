-- SQLite: drop events landed in the warehouse and created before :before (unix seconds); pending ones stay.
DELETE FROM stored_events WHERE loaded_at IS NOT NULL AND created < :before;
