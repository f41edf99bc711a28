-- Webhooks (decision 0017): subscriptions, the outbox of events written in
-- the transaction that makes a run terminal (or starts it), and every
-- delivery attempt.
CREATE TABLE sluice.webhooks (
    id               text COLLATE "C" PRIMARY KEY,
    url              text NOT NULL,
    -- Wire names: run.completed, run.failed, ...
    events           text[] NOT NULL,
    -- NULL: every pipeline.
    pipeline_ids     text[],
    format           text NOT NULL,
    enabled          boolean NOT NULL,
    errors_threshold bigint,
    -- Write-only: read by the delivery worker alone, never returned.
    secret           text NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- One row per (subscription, run, event): the unique key makes enqueueing
-- idempotent, so a transaction replayed cannot invent a second event.
CREATE TABLE sluice.webhook_events (
    id               text COLLATE "C" PRIMARY KEY,
    webhook_id       text COLLATE "C" NOT NULL REFERENCES sluice.webhooks (id) ON DELETE CASCADE,
    run_id           text COLLATE "C" NOT NULL REFERENCES sluice.runs (id) ON DELETE CASCADE,
    pipeline_id      text COLLATE "C" NOT NULL,
    event            text NOT NULL,
    errors_threshold bigint,
    created_at       timestamptz NOT NULL,
    -- pending (to send), delivered, failed (given up).
    state            text NOT NULL DEFAULT 'pending',
    attempts         integer NOT NULL DEFAULT 0,
    -- The retry window (24 h) starts here: the event, or its last redelivery.
    window_start     timestamptz NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    -- The body as first sent, so every attempt sends the same bytes.
    body             text,
    lease_owner      text,
    lease_token      bigint,
    lease_expires_at timestamptz,
    UNIQUE (webhook_id, run_id, event)
);
CREATE INDEX webhook_events_due ON sluice.webhook_events (next_attempt_at)
    WHERE state = 'pending';

CREATE TABLE sluice.webhook_deliveries (
    id               text COLLATE "C" PRIMARY KEY,
    event_id         text COLLATE "C" NOT NULL REFERENCES sluice.webhook_events (id) ON DELETE CASCADE,
    webhook_id       text COLLATE "C" NOT NULL,
    attempt          integer NOT NULL,
    attempted_at     timestamptz NOT NULL,
    status_code      integer,
    latency_ms       bigint NOT NULL,
    error            text,
    -- delivered, retrying, failed.
    outcome          text NOT NULL,
    next_attempt_at  timestamptz
);
CREATE INDEX webhook_deliveries_by_hook ON sluice.webhook_deliveries (webhook_id, id DESC);
