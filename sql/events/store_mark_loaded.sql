-- SQLite: record that an event has landed in the warehouse.
UPDATE stored_events SET loaded_at = :loaded_at WHERE event_id = :event_id AND loaded_at IS NULL;
