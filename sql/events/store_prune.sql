-- SQLite: drop events created AND landed in the warehouse before :before (unix seconds); pending ones stay.
-- Both: Stripe re-sends nothing older than 30 days after `created`, and a just-landed old event (a backfill)
-- stays until the retention passed since landing too, so a re-read cannot store it as new and apply it again.
DELETE FROM stored_events WHERE loaded_at IS NOT NULL AND loaded_at < :before AND created < :before;
