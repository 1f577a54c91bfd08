-- The view of the newest features (also created by migration 0003; a new warehouse gets it here, as its tables
-- come from the declarations, which hold tables only).
CREATE OR REPLACE VIEW fc_current_underwriting_features AS
SELECT * FROM fc_underwriting_features
WHERE window_end = (SELECT max(window_end) FROM fc_underwriting_features)
