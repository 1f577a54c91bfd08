-- The refresh outcomes present.
SELECT DISTINCT outcome FROM fc_balance_refreshes;
