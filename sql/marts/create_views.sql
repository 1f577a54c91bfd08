-- The view of the newest features. An upgraded warehouse gets it from migration 0003; a new one from
-- pipelines.contract.migrations right after its declared tables (the declarations hold tables only).
CREATE OR REPLACE VIEW fc_current_underwriting_features AS
SELECT * FROM fc_underwriting_features
WHERE window_end = (SELECT max(window_end) FROM fc_underwriting_features)
