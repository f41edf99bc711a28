-- Error and rejected-row tables grow by thousands of rows per batch from
-- empty; with default autovacuum settings their statistics lag far behind,
-- and the planner then scans and sorts a whole run's errors to answer "the
-- first 20". Analyse them after every 1,000 changed rows instead.
ALTER TABLE sluice.validation_errors
    SET (autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);
ALTER TABLE sluice.rejected_rows
    SET (autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);
