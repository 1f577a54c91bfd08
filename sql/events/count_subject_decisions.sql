-- SQLite: the account and customer ids of every stored funds decision (forget counts a subject's among them).
SELECT account_id, customer_id FROM funds_decisions;
