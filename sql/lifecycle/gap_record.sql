-- One outage longer than Stripe keeps events, reconciled.
INSERT INTO fc_event_gaps (gap_from, gap_to, detected_at, detected_by, accounts_reconciled, balances_landed)
VALUES ($gap_from, $gap_to, $detected_at, $detected_by, $accounts_reconciled, $balances_landed);
