-- Swap the next state of fc_latest_balances in (inside the caller's transaction).
DELETE FROM fc_latest_balances;
INSERT INTO fc_latest_balances SELECT * FROM _fc_latest_next;
DROP TABLE _fc_latest_next;
