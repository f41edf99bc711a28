-- The file ledger: per pipeline, every file a run has loaded, written in the
-- transaction that finalises the run (so a file is in the ledger exactly when
-- its rows are committed) and never expiring. Keys are in the "C" collation
-- so that key order is byte order, as object stores list them.
CREATE SEQUENCE sluice.file_ledger_seq;

CREATE TABLE sluice.file_ledger (
    pipeline_id   text COLLATE "C" NOT NULL REFERENCES sluice.pipelines (id) ON DELETE CASCADE,
    key           text COLLATE "C" NOT NULL,
    etag          text,
    size          bigint NOT NULL,
    last_modified timestamptz,
    total_rows    bigint NOT NULL,
    -- NULL for files recorded from runs that predate the ledger when the
    -- split between loaded and skipped rows cannot be known.
    loaded        bigint,
    skipped       bigint,
    failed        bigint NOT NULL,
    run_id        text COLLATE "C" NOT NULL,
    loaded_at     timestamptz NOT NULL,
    -- Newest first: every (re)load draws a new number.
    seq           bigint NOT NULL DEFAULT nextval('sluice.file_ledger_seq'),
    -- `DELETE /pipelines/{id}/files` marks entries forgotten (so the run that
    -- reads the file again can say why); a forgotten entry counts as absent.
    forgotten_at  timestamptz,
    forgotten_by  text,
    PRIMARY KEY (pipeline_id, key)
);
CREATE INDEX file_ledger_newest ON sluice.file_ledger (pipeline_id, seq DESC)
    WHERE forgotten_at IS NULL;

-- Per-file accounting of a run, kept in each batch's commit transaction.
ALTER TABLE sluice.run_files
    ADD COLUMN last_modified timestamptz,
    ADD COLUMN loaded  bigint DEFAULT 0,
    ADD COLUMN skipped bigint DEFAULT 0,
    ADD COLUMN failed  bigint NOT NULL DEFAULT 0;
-- Batches find the files their rows belong to by row number.
CREATE INDEX run_files_rows ON sluice.run_files (run_id, first_row);

-- The cron tick that last started a scheduled run.
ALTER TABLE sluice.poll_state ADD COLUMN last_tick timestamptz;

-- Runs that finished before the ledger existed: their failed rows per file
-- are exact (validation errors carry row numbers); loaded and skipped are
-- exact when the run had one file or skipped nothing, and unknown (NULL)
-- otherwise.
WITH per_file AS (
    SELECT f.run_id, f.idx,
           (SELECT count(DISTINCT v.row_num) FROM sluice.validation_errors v
             WHERE v.run_id = f.run_id
               AND v.row_num BETWEEN f.first_row AND f.first_row + f.row_count - 1) AS failed,
           count(*) OVER (PARTITION BY f.run_id) AS files
    FROM sluice.run_files f
)
UPDATE sluice.run_files f
SET failed = p.failed,
    loaded = CASE WHEN p.files = 1 THEN s.loaded
                  WHEN s.skipped = 0 THEN f.row_count - p.failed END,
    skipped = CASE WHEN p.files = 1 THEN s.skipped
                   WHEN s.skipped = 0 THEN 0 END
FROM per_file p, sluice.run_summaries s
WHERE p.run_id = f.run_id AND p.idx = f.idx AND s.id = f.run_id;

-- The ledger of pipelines that existed before it: every file of their
-- completed runs (the newest run that read a key wins), so the first run
-- after the upgrade does not load everything again.
INSERT INTO sluice.file_ledger
    (pipeline_id, key, etag, size, last_modified, total_rows, loaded, skipped, failed, run_id, loaded_at)
SELECT DISTINCT ON (r.pipeline_id, f.key)
       r.pipeline_id, f.key, f.etag, f.size, NULL, f.row_count,
       f.loaded, f.skipped, f.failed, r.id, COALESCE(r.finished_at, r.created_at)
FROM sluice.runs r
JOIN sluice.run_files f ON f.run_id = r.id
WHERE r.status IN ('completed', 'completed_with_errors')
ORDER BY r.pipeline_id, f.key, r.id DESC;
