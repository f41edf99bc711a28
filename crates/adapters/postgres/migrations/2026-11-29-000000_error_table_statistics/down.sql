ALTER TABLE sluice.validation_errors
    RESET (autovacuum_analyze_scale_factor, autovacuum_analyze_threshold);
ALTER TABLE sluice.rejected_rows
    RESET (autovacuum_analyze_scale_factor, autovacuum_analyze_threshold);
