-- Sluice's metadata, work queue and run history. Destination tables live in
-- the warehouse schema, never here. Ids are typed ULIDs (`run_01…`) kept as
-- text in the "C" collation, so ordering by id is ordering by creation time
-- whatever the database's locale.
CREATE SCHEMA IF NOT EXISTS sluice;

-- Fencing tokens of extraction and partition leases: every claim draws a new one.
CREATE SEQUENCE sluice.lease_tokens;

CREATE TABLE sluice.api_keys (
    id          text COLLATE "C" PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    prefix      text NOT NULL,
    -- Only the SHA-256 of the secret is stored.
    secret_hash text NOT NULL CONSTRAINT api_keys_secret_hash_key UNIQUE,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

CREATE TABLE sluice.connectors (
    id              text COLLATE "C" PRIMARY KEY,
    name            text NOT NULL,
    connector_type  text NOT NULL,
    config          jsonb NOT NULL,
    credential_keys text[] NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- Secrets apart from the connector row, so that no query reading connectors
-- can return them by accident: only `connector_credentials` reads this table.
CREATE TABLE sluice.connector_secrets (
    connector_id text COLLATE "C" PRIMARY KEY
        REFERENCES sluice.connectors (id) ON DELETE CASCADE,
    credentials  jsonb NOT NULL
);

CREATE TABLE sluice.pipelines (
    id              text COLLATE "C" PRIMARY KEY,
    connector_id    text COLLATE "C" NOT NULL
        CONSTRAINT pipelines_connector_fk REFERENCES sluice.connectors (id),
    spec            jsonb NOT NULL,
    -- Copied from `spec` so that polling can select its targets in SQL.
    active          boolean NOT NULL,
    polling_enabled boolean NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX pipelines_connector ON sluice.pipelines (connector_id);

CREATE TABLE sluice.runs (
    id                    text COLLATE "C" PRIMARY KEY,
    pipeline_id           text COLLATE "C" NOT NULL
        REFERENCES sluice.pipelines (id) ON DELETE CASCADE,
    status                text NOT NULL CHECK (status IN
        ('pending', 'running', 'completed', 'completed_with_errors', 'failed', 'cancelled')),
    load_strategy         text NOT NULL CHECK (load_strategy IN ('append', 'upsert', 'replace')),
    run_trigger           text NOT NULL CHECK (run_trigger IN ('api', 'poll', 'retry')),
    -- The pipeline definition the run executes (a snapshot).
    spec                  jsonb NOT NULL,
    -- retryOf, resumeFromRow, resumable, touchFile, touchFileEtag.
    metadata              jsonb NOT NULL,
    -- This run and the runs it resumes, newest first.
    lineage               text[] COLLATE "C" NOT NULL,
    -- A resumable retry: files and partitions were copied from the original.
    resume                boolean NOT NULL DEFAULT false,
    total_rows            bigint,
    partition_count       integer NOT NULL DEFAULT 0,
    error                 text,
    created_at            timestamptz NOT NULL,
    started_at            timestamptz,
    finished_at           timestamptz,
    extraction_owner      text,
    extraction_token      bigint,
    extraction_expires_at timestamptz
);
CREATE INDEX runs_pipeline ON sluice.runs (pipeline_id, id);
CREATE INDEX runs_active ON sluice.runs (status, id) WHERE status IN ('pending', 'running');
-- At most one pending or running run per pipeline, enforced by the database.
CREATE UNIQUE INDEX runs_one_active_per_pipeline ON sluice.runs (pipeline_id)
    WHERE status IN ('pending', 'running');

CREATE TABLE sluice.run_files (
    run_id    text COLLATE "C" NOT NULL REFERENCES sluice.runs (id) ON DELETE CASCADE,
    idx       integer NOT NULL,
    key       text NOT NULL,
    size      bigint NOT NULL,
    etag      text,
    gzip      boolean NOT NULL,
    header    text[],
    first_row bigint NOT NULL,
    row_count bigint NOT NULL,
    PRIMARY KEY (run_id, idx)
);

CREATE TABLE sluice.partitions (
    run_id           text COLLATE "C" NOT NULL REFERENCES sluice.runs (id) ON DELETE CASCADE,
    idx              integer NOT NULL,
    first_row        bigint NOT NULL,
    row_count        bigint NOT NULL,
    start_file       integer NOT NULL,
    start_offset     bigint NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    -- The checkpoint: last committed row and where the next record starts.
    checkpoint_row   bigint NOT NULL,
    next_file        integer NOT NULL,
    next_offset      bigint NOT NULL,
    -- Updated in the transaction that moves the checkpoint; a run's counters
    -- are always summed from these, never stored twice.
    loaded           bigint NOT NULL DEFAULT 0,
    skipped          bigint NOT NULL DEFAULT 0,
    failed           bigint NOT NULL DEFAULT 0,
    rate             double precision,
    -- Last row of the original run revisited by this (retry) partition.
    revisit_cursor   bigint NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_token      bigint,
    lease_expires_at timestamptz,
    PRIMARY KEY (run_id, idx)
);
CREATE INDEX partitions_open ON sluice.partitions (run_id, idx)
    WHERE status IN ('pending', 'running');

-- Validation errors in row order; `seq` keeps the order of errors within a row.
CREATE TABLE sluice.validation_errors (
    run_id      text COLLATE "C" NOT NULL REFERENCES sluice.runs (id) ON DELETE CASCADE,
    row_num     bigint NOT NULL,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    column_name text NOT NULL,
    value       text NOT NULL,
    error       text NOT NULL,
    PRIMARY KEY (run_id, row_num, seq)
);

-- Raw records that failed validation, so a retry can validate them again.
CREATE TABLE sluice.rejected_rows (
    run_id        text COLLATE "C" NOT NULL REFERENCES sluice.runs (id) ON DELETE CASCADE,
    row_num       bigint NOT NULL,
    partition_idx integer NOT NULL,
    file_index    integer NOT NULL,
    raw           bytea NOT NULL,
    PRIMARY KEY (run_id, row_num)
);

-- Rows of the original run that a resumable retry must validate again.
CREATE TABLE sluice.revisits (
    run_id        text COLLATE "C" NOT NULL REFERENCES sluice.runs (id) ON DELETE CASCADE,
    row_num       bigint NOT NULL,
    partition_idx integer NOT NULL,
    file_index    integer NOT NULL,
    raw           bytea NOT NULL,
    PRIMARY KEY (run_id, row_num)
);
CREATE INDEX revisits_partition ON sluice.revisits (run_id, partition_idx, row_num);

CREATE TABLE sluice.run_log (
    run_id    text COLLATE "C" NOT NULL REFERENCES sluice.runs (id) ON DELETE CASCADE,
    seq       bigint GENERATED ALWAYS AS IDENTITY,
    stage     text NOT NULL,
    message   text NOT NULL,
    logged_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE sluice.poll_state (
    pipeline_id     text COLLATE "C" PRIMARY KEY
        REFERENCES sluice.pipelines (id) ON DELETE CASCADE,
    -- ETag of the touch file that last started a run.
    last_etag       text,
    last_checked_at timestamptz,
    last_error      text
);

-- A run with its counters summed from its partitions: the only way runs are
-- read, so run counters can never drift from the checkpoints they summarise.
CREATE VIEW sluice.run_summaries AS
SELECT r.id, r.pipeline_id, r.status, r.load_strategy, r.run_trigger, r.metadata,
       r.total_rows, r.partition_count, r.error, r.created_at, r.started_at, r.finished_at,
       COALESCE(c.loaded, 0)::bigint AS loaded,
       COALESCE(c.skipped, 0)::bigint AS skipped,
       COALESCE(c.failed, 0)::bigint AS failed
FROM sluice.runs r
LEFT JOIN LATERAL (
    SELECT sum(p.loaded) AS loaded, sum(p.skipped) AS skipped, sum(p.failed) AS failed
    FROM sluice.partitions p
    WHERE p.run_id = r.id
) c ON true;
