-- Land the rows pipelines/feature_windows.py computed (an Arrow table registered as _fc_feature_rows,
-- already sorted by window_end, so one day's rows stay together).
INSERT INTO fc_underwriting_features BY NAME SELECT * FROM _fc_feature_rows
