-- Land funds decisions from the registered Arrow table `fc_funds_decisions_batch`; an id already landed stays.
INSERT INTO fc_funds_decisions BY NAME
SELECT * FROM fc_funds_decisions_batch
ON CONFLICT (id) DO NOTHING;
