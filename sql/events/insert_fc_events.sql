-- Land events from the registered Arrow table `fc_events_batch`; an event id already stored is left alone.
INSERT INTO fc_events
SELECT event_id, type, created, account_id, received_at, payload
FROM fc_events_batch
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at) = 1
ON CONFLICT (event_id) DO NOTHING;
