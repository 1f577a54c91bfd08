-- SQLite: an expired events cursor seen by the sensor, waiting for the fc_events run that reconciles it.
INSERT INTO event_gaps (gap_from, gap_to, detected_by) VALUES (:gap_from, :gap_to, :detected_by);
