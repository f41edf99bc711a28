//! diesel's view of the metadata tables (schema `sluice`), matching the
//! embedded migrations.

diesel::table! {
    sluice.api_keys (id) {
        id -> Text,
        name -> Text,
        role -> Text,
        prefix -> Text,
        secret_hash -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sluice.connectors (id) {
        id -> Text,
        name -> Text,
        connector_type -> Text,
        config -> Jsonb,
        credential_keys -> Array<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        credential_source -> Nullable<Text>,
    }
}

diesel::table! {
    sluice.connector_secrets (connector_id) {
        connector_id -> Text,
        credentials -> Jsonb,
    }
}

diesel::table! {
    sluice.pipelines (id) {
        id -> Text,
        connector_id -> Text,
        spec -> Jsonb,
        active -> Bool,
        polling_enabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sluice.runs (id) {
        id -> Text,
        pipeline_id -> Text,
        status -> Text,
        load_strategy -> Text,
        run_trigger -> Text,
        spec -> Jsonb,
        metadata -> Jsonb,
        lineage -> Array<Text>,
        resume -> Bool,
        total_rows -> Nullable<Int8>,
        partition_count -> Int4,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// The extraction lease columns of `sluice.runs` (diesel's tables stop
    /// at 16 columns without a slower-to-build feature).
    #[sql_name = "runs"]
    sluice.run_leases (id) {
        id -> Text,
        status -> Text,
        extraction_owner -> Nullable<Text>,
        extraction_token -> Nullable<Int8>,
        extraction_expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sluice.run_files (run_id, idx) {
        run_id -> Text,
        idx -> Int4,
        key -> Text,
        size -> Int8,
        etag -> Nullable<Text>,
        gzip -> Bool,
        header -> Nullable<Array<Text>>,
        first_row -> Int8,
        row_count -> Int8,
        last_modified -> Nullable<Timestamptz>,
        loaded -> Nullable<Int8>,
        skipped -> Nullable<Int8>,
        failed -> Int8,
    }
}

diesel::table! {
    sluice.file_ledger (pipeline_id, key) {
        pipeline_id -> Text,
        key -> Text,
        etag -> Nullable<Text>,
        size -> Int8,
        last_modified -> Nullable<Timestamptz>,
        total_rows -> Int8,
        loaded -> Nullable<Int8>,
        skipped -> Nullable<Int8>,
        failed -> Int8,
        run_id -> Text,
        loaded_at -> Timestamptz,
        seq -> Int8,
        forgotten_at -> Nullable<Timestamptz>,
        forgotten_by -> Nullable<Text>,
    }
}

diesel::table! {
    sluice.partitions (run_id, idx) {
        run_id -> Text,
        idx -> Int4,
        first_row -> Int8,
        row_count -> Int8,
        start_file -> Int4,
        start_offset -> Int8,
        status -> Text,
        checkpoint_row -> Int8,
        next_file -> Int4,
        next_offset -> Int8,
        loaded -> Int8,
        skipped -> Int8,
        failed -> Int8,
        rate -> Nullable<Float8>,
        revisit_cursor -> Int8,
    }
}

diesel::table! {
    /// The lease columns of `sluice.partitions`.
    #[sql_name = "partitions"]
    sluice.partition_leases (run_id, idx) {
        run_id -> Text,
        idx -> Int4,
        status -> Text,
        lease_owner -> Nullable<Text>,
        lease_token -> Nullable<Int8>,
        lease_expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sluice.validation_errors (run_id, row_num, seq) {
        run_id -> Text,
        row_num -> Int8,
        seq -> Int8,
        column_name -> Text,
        value -> Text,
        error -> Text,
    }
}

diesel::table! {
    sluice.revisits (run_id, row_num) {
        run_id -> Text,
        row_num -> Int8,
        partition_idx -> Int4,
        file_index -> Int4,
        raw -> Bytea,
    }
}

diesel::table! {
    sluice.run_log (run_id, seq) {
        run_id -> Text,
        seq -> Int8,
        stage -> Text,
        message -> Text,
        logged_at -> Timestamptz,
    }
}

diesel::table! {
    sluice.poll_state (pipeline_id) {
        pipeline_id -> Text,
        last_etag -> Nullable<Text>,
        last_checked_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        last_tick -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(pipelines -> connectors (connector_id));
diesel::joinable!(runs -> pipelines (pipeline_id));
diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    run_summaries,
    connectors,
    connector_secrets,
    pipelines,
    runs,
    run_leases,
    run_files,
    file_ledger,
    partitions,
    partition_leases,
    validation_errors,
    revisits,
    run_log,
    poll_state,
);

diesel::table! {
    /// A view: runs with counters summed from their partitions.
    sluice.run_summaries (id) {
        id -> Text,
        pipeline_id -> Text,
        status -> Text,
        load_strategy -> Text,
        run_trigger -> Text,
        metadata -> Jsonb,
        total_rows -> Nullable<Int8>,
        partition_count -> Int4,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        loaded -> Int8,
        skipped -> Int8,
        failed -> Int8,
    }
}
