-- Underwriting features of a list of accounts. {features} is fc_current_underwriting_features when the
-- warehouse has it, else fc_underwriting_features (chosen from that fixed pair in pipelines/report/data.py).
-- Parameter: $accounts (VARCHAR[]).
SELECT f.*
FROM {features} AS f
WHERE f.account_id IN (SELECT unnest($accounts::VARCHAR[]))
ORDER BY f.account_id, f.currency, f.window_days;
