ALTER TABLE sluice.poll_state DROP COLUMN last_tick;
DROP INDEX sluice.run_files_rows;
ALTER TABLE sluice.run_files
    DROP COLUMN last_modified,
    DROP COLUMN loaded,
    DROP COLUMN skipped,
    DROP COLUMN failed;
DROP TABLE sluice.file_ledger;
DROP SEQUENCE sluice.file_ledger_seq;
