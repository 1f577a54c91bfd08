-- SQLite: one funds decision, stored before it is answered.
INSERT INTO funds_decisions (decision_id, created, account_id, customer_id, answer)
VALUES (:decision_id, :created, :account_id, :customer_id, :answer);
