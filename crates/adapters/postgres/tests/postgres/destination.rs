//! Destination tables beyond the contract suite: existing tables, every
//! column type, COPY escaping, shadow clean-up, concurrency.

use std::sync::Arc;

use sluice_application::ports::{
    BatchCommit, BulkLoader, CommitError, LoadTarget, PartitionClaim, RunStore, StoreError,
    WorkQueue,
};
use sluice_application::testing::contract::{Fixture, T0};
use sluice_domain::identifier::Identifier;
use sluice_domain::pipeline::{LoadStrategy, Pipeline};
use sluice_domain::run::{Checkpoint, LogEntry, LogStage, SourcePosition};
use sluice_domain::schema::{Column, ColumnType, Schema};
use sluice_domain::status::RunStatus;
use sluice_domain::validation::{RowError, ValidBatch};
use sluice_postgres::PgStore;

use crate::support::{SluiceMigrations, TestDb, store};

pub(crate) fn ident(s: &str) -> Identifier {
    Identifier::parse(s).expect("identifier")
}

fn column(name: &str, t: ColumnType) -> Column {
    Column {
        name: ident(name),
        source: None,
        column_type: t,
        required: false,
        max_length: None,
        pattern: None,
        allowed_values: None,
    }
}

/// The fixture's shape: `id integer, name string`.
pub(crate) fn id_name() -> Schema {
    Schema {
        columns: vec![
            column("id", ColumnType::Integer),
            column("name", ColumnType::String),
        ],
    }
}

/// A log entry.
pub(crate) fn entry(stage: LogStage, message: &str) -> LogEntry {
    LogEntry {
        stage,
        message: message.into(),
        timestamp: T0,
    }
}

pub(crate) async fn claim(s: &PgStore, f: &Fixture) -> PartitionClaim {
    s.claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("a partition")
}

pub(crate) fn commit<'a>(
    claim: &'a PartitionClaim,
    target: &'a LoadTarget,
    rows: &'a ValidBatch,
    errors: &'a [RowError],
    to: u64,
) -> BatchCommit<'a> {
    BatchCommit {
        claim,
        target,
        rows,
        errors,
        rejected: &[],
        checkpoint: Checkpoint {
            row: to,
            next: SourcePosition {
                file_index: 0,
                byte_offset: to * 10,
            },
        },
        revisit_cursor: None,
        rate: 1.0,
        at: T0,
    }
}

/// A running run of a pipeline over `table` with `partitions` ranges of
/// `rows_each` rows, and its target with `schema`.
pub(crate) async fn running(
    s: &PgStore,
    f: &Fixture,
    table: &str,
    strategy: LoadStrategy,
    schema: Schema,
    keys: &[&str],
    (partitions, rows_each): (u32, u64),
) -> (Pipeline, LoadTarget) {
    let p = f.pipeline(s, table, strategy, false).await;
    let run_id = f.running_run(s, &p, partitions, rows_each).await;
    let target = LoadTarget {
        run_id,
        table: ident(table),
        schema,
        key_columns: keys.iter().map(|k| ident(k)).collect(),
        strategy,
        lineage: vec![run_id],
    };
    (p, target)
}

/// Values with COPY's special characters, and every column type, load
/// unchanged through both paths (direct COPY and staging + merge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_special_characters_round_trip() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let s = store(&db).await;
    let f = Fixture::new();
    let schema = Schema {
        columns: vec![
            column("s", ColumnType::String),
            column("i", ColumnType::Integer),
            column("n", ColumnType::Number),
            column("b", ColumnType::Boolean),
            column("d", ColumnType::Date),
            column("ts", ColumnType::Timestamp),
            column("e", ColumnType::Email),
            column("u", ColumnType::Uuid),
        ],
    };
    let tricky = [
        "tab\there",
        "new\nline",
        "carriage\rreturn",
        "back\\slash",
        "\\N",
        "quote \" and ' and , and ;",
        "ünïcødé ✓",
        "",
    ];
    for (table, strategy, keys) in [
        ("plain", LoadStrategy::Append, &[][..]),
        ("keyed", LoadStrategy::Upsert, &["i"][..]),
    ] {
        let (_, target) = running(&s, &f, table, strategy, schema.clone(), keys, (1, 9)).await;
        s.prepare_destination(&target).await.expect("prepare");
        let c = claim(&s, &f).await;
        let mut rows = ValidBatch::new(8);
        let ints: Vec<String> = (1..=9).map(|i| i.to_string()).collect();
        for (k, text) in tricky.iter().enumerate() {
            rows.push_row(
                k as u64 + 1,
                [
                    Some(*text),
                    Some(ints[k].as_str()),
                    Some("-12.50"),
                    Some("true"),
                    Some("2024-02-29"),
                    Some("2026-03-30T10:00:05Z"),
                    Some("a@b.example"),
                    Some("123e4567-e89b-12d3-a456-426614174000"),
                ],
            );
        }
        rows.push_row(9, [None, Some("9"), None, None, None, None, None, None]);
        let errors = [RowError::new(
            9,
            "s",
            "nul\0and\ttab\\",
            "Contains a NUL character",
        )];
        let out = s
            .commit_batch(commit(&c, &target, &rows, &errors, 9))
            .await
            .expect("commit");
        assert_eq!((out.loaded, out.skipped, out.failed), (9, 0, 1), "{table}");
        let client = db.client().await;
        let back = client
            .query(
                &format!(
                    "SELECT s, i, n::text, b, d::text, \
                     to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), e, u::text \
                     FROM public.{table} ORDER BY i"
                ),
                &[],
            )
            .await
            .expect("read back");
        assert_eq!(back.len(), 9);
        for (k, text) in tricky.iter().enumerate() {
            let r = &back[k];
            assert_eq!(r.get::<_, Option<String>>(0).as_deref(), Some(*text));
            assert_eq!(r.get::<_, i64>(1), k as i64 + 1);
            assert_eq!(r.get::<_, String>(2), "-12.50");
            assert!(r.get::<_, bool>(3));
            assert_eq!(r.get::<_, String>(4), "2024-02-29");
            assert_eq!(r.get::<_, String>(5), "2026-03-30T10:00:05Z");
            assert_eq!(r.get::<_, String>(6), "a@b.example");
            assert_eq!(
                r.get::<_, String>(7),
                "123e4567-e89b-12d3-a456-426614174000"
            );
        }
        assert_eq!(back[8].get::<_, Option<String>>(0), None);
        let stored = s.first_errors(target.run_id, 10).await.expect("errors");
        // PostgreSQL text cannot hold NUL: it is stored as U+FFFD.
        assert_eq!(stored[0].value, "nul\u{FFFD}and\ttab\\");
        let entry = entry(LogStage::Load, "done");
        s.fail_run(target.run_id, &entry, T0).await.expect("stop");
    }
    drop(s);
    db.drop_db().await;
}

/// Rows go to a table Sluice made in PostgreSQL's binary COPY format, which
/// Sluice encodes itself: for edge values of every column type, what is
/// stored is exactly what PostgreSQL's own text input makes of the
/// validated value, through both paths (direct COPY and staging + merge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_copy_stores_what_text_input_would() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let s = store(&db).await;
    let f = Fixture::new();
    let cases: [(&str, ColumnType, &str, &[&str]); 9] = [
        (
            "n",
            ColumnType::Number,
            "numeric",
            &[
                "0",
                "-0",
                "0.000",
                "-0.0e5",
                "123.45",
                "-12345.6789",
                "1e4",
                "1.5e-3",
                "1E+2",
                ".5",
                "5.",
                "+7",
                "0.00001",
                "123.4500e2",
                "99999999999999999999.99999999999",
                "1e1000",
                "-1e-1000",
                "10000",
                "0.0001",
                "987654321.123456789e-7",
            ],
        ),
        (
            "ts",
            ColumnType::Timestamp,
            "timestamptz",
            &[
                "2026-03-30T10:00:05Z",
                "2026-03-30t10:00:05z",
                "2026-03-30 10:00:05+02:00",
                "0001-01-01T00:00:00+15:59",
                "9999-12-31T23:59:59.999999-15:59",
                "2016-12-31T23:59:60Z",
                "2016-12-31T23:59:60.0000004Z",
                "2000-01-01T00:00:00.1234565Z",
                "2000-01-01T00:00:00.0000005Z",
                "2000-01-01T00:00:00.0000015Z",
                "2000-01-01T00:00:00.123456789Z",
                "1969-07-20T20:17:40.9999999Z",
                "1999-12-31T23:59:59.999999-00:30",
            ],
        ),
        (
            "d",
            ColumnType::Date,
            "date",
            &[
                "0001-01-01",
                "9999-12-31",
                "2000-02-29",
                "1900-03-01",
                "1999-12-31",
                "1970-01-01",
            ],
        ),
        (
            "i",
            ColumnType::Integer,
            "bigint",
            &[
                "0",
                "-9223372036854775808",
                "9223372036854775807",
                "+42",
                "007",
                "-1",
            ],
        ),
        (
            "b",
            ColumnType::Boolean,
            "boolean",
            &["T", "yes", "0", "N", "false"],
        ),
        (
            "u",
            ColumnType::Uuid,
            "uuid",
            &[
                "123E4567-E89B-12D3-A456-426614174000",
                "00000000-0000-0000-0000-000000000000",
                "ffffffff-ffff-ffff-ffff-ffffffffffff",
            ],
        ),
        (
            "s",
            ColumnType::String,
            "text",
            &["", "ünïcødé ✓", "\\N", "tab\there", "nul\0byte"],
        ),
        (
            "e",
            ColumnType::Email,
            "text",
            &["a@b.example", "first.last+tag@mail.example.org"],
        ),
        (
            "j",
            ColumnType::Json,
            "jsonb",
            &[
                r#"{"b": [1, 2.50, null], "a": {"é": "\\u0000 is text here"}}"#,
                "\"a string\"",
                "12345678901234567890.123",
                "true",
                "null",
                "[]",
                r#"{"dup": 1, "dup": 2}"#,
            ],
        ),
    ];
    let schema = Schema {
        columns: cases
            .iter()
            .map(|(name, t, _, _)| column(name, *t))
            .collect(),
    };
    let height = cases.iter().map(|c| c.3.len()).max().unwrap_or(0);
    // Row k holds the k-th value of each type (NULL past a type's list).
    let normalised: Vec<Vec<Option<String>>> = (0..height)
        .map(|k| {
            cases
                .iter()
                .map(|(_, t, _, values)| {
                    values.get(k).map(|v| {
                        sluice_domain::validation::check_type(*t, v)
                            .unwrap_or_else(|e| panic!("{v:?} is not a valid {t:?}: {e}"))
                            .into_owned()
                    })
                })
                .collect()
        })
        .collect();
    let client = db.client().await;
    client
        .batch_execute("SET TimeZone = 'UTC'")
        .await
        .expect("UTC");
    for (table, strategy, keys) in [
        ("binary_plain", LoadStrategy::Append, &[][..]),
        ("binary_keyed", LoadStrategy::Upsert, &["k"][..]),
    ] {
        let mut schema = schema.clone();
        schema.columns.push(column("k", ColumnType::Integer));
        let rows_total = height as u64;
        let (_, target) = running(&s, &f, table, strategy, schema, keys, (1, rows_total)).await;
        s.prepare_destination(&target).await.expect("prepare");
        let c = claim(&s, &f).await;
        let mut rows = ValidBatch::new(cases.len() + 1);
        let ks: Vec<String> = (1..=height).map(|k| k.to_string()).collect();
        for (k, values) in normalised.iter().enumerate() {
            rows.push_row(
                k as u64 + 1,
                values
                    .iter()
                    .map(Option::as_deref)
                    .chain([Some(ks[k].as_str())]),
            );
        }
        let out = s
            .commit_batch(commit(&c, &target, &rows, &[], rows_total))
            .await
            .expect("commit");
        assert_eq!(out.loaded, rows_total, "{table}");
        for (name, t, pg, _) in &cases {
            for (k, values) in normalised.iter().enumerate() {
                let Some(v) = values[cases.iter().position(|c| c.0 == *name).unwrap_or(0)].clone()
                else {
                    continue;
                };
                let stored: Option<String> = client
                    .query_one(
                        &format!("SELECT {name}::text FROM public.{table} WHERE k = $1"),
                        &[&(k as i64 + 1)],
                    )
                    .await
                    .expect("stored")
                    .get(0);
                // PostgreSQL text cannot hold NUL: Sluice stores U+FFFD.
                let input = v.replace('\0', "\u{FFFD}");
                let expected: String = client
                    .query_one(&format!("SELECT $1::text::{pg}::text"), &[&input])
                    .await
                    .expect("PostgreSQL parses it")
                    .get(0);
                assert_eq!(
                    stored.as_deref(),
                    Some(expected.as_str()),
                    "{table}: {t:?} {v:?}"
                );
            }
        }
        let entry = entry(LogStage::Load, "done");
        s.fail_run(target.run_id, &entry, T0).await.expect("stop");
    }
    drop(s);
    db.drop_db().await;
}

/// A leap second with a fraction passes validation but PostgreSQL's text
/// input refuses it: the destination still refuses the batch (it goes in
/// the text format), as before binary COPY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_text_input_refuses_is_still_refused() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let s = store(&db).await;
    let f = Fixture::new();
    let schema = Schema {
        columns: vec![column("ts", ColumnType::Timestamp)],
    };
    let (_, target) = running(&s, &f, "leap", LoadStrategy::Append, schema, &[], (1, 2)).await;
    s.prepare_destination(&target).await.expect("prepare");
    let c = claim(&s, &f).await;
    let mut rows = ValidBatch::new(1);
    rows.push_row(1, [Some("2016-12-31T23:59:59Z")]);
    rows.push_row(2, [Some("2016-12-31T23:59:60.5Z")]);
    let refused = s.commit_batch(commit(&c, &target, &rows, &[], 2)).await;
    assert!(refused.is_err(), "{refused:?}");
    let stored: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM public.leap", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(stored, 0);
    drop(s);
    db.drop_db().await;
}

/// An existing table gets the missing schema and lineage columns and a key
/// index; rows stored before Sluice count as an earlier load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_tables_are_completed() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let s = store(&db).await;
    let f = Fixture::new();
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE public.customers (id bigint, note text); \
             INSERT INTO public.customers VALUES (1, 'before'), (2, 'before');",
        )
        .await
        .expect("existing table");
    let schema = id_name();
    let (_, target) = running(
        &s,
        &f,
        "customers",
        LoadStrategy::Upsert,
        schema,
        &["id"],
        (1, 3),
    )
    .await;
    s.prepare_destination(&target).await.expect("prepare");
    s.prepare_destination(&target).await.expect("idempotent");
    let c = claim(&s, &f).await;
    let mut rows = ValidBatch::new(2);
    rows.push_row(1, [Some("1"), Some("one")]);
    rows.push_row(2, [Some("3"), Some("three")]);
    rows.push_row(3, [Some("1"), Some("uno")]);
    let out = s
        .commit_batch(commit(&c, &target, &rows, &[], 3))
        .await
        .expect("commit");
    // Key 1 was stored before Sluice (an earlier load): the last occurrence
    // (row 3) overwrites it; key 3 is new; row 1 lost to row 3 in the batch.
    assert_eq!((out.loaded, out.skipped), (2, 1));
    let back: Vec<(i64, Option<String>, Option<String>)> = client
        .query(
            "SELECT id, name, note FROM public.customers ORDER BY id",
            &[],
        )
        .await
        .expect("read")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        back,
        vec![
            (1, Some("uno".into()), Some("before".into())),
            (2, None, Some("before".into())),
            (3, Some("three".into()), None),
        ]
    );
    drop(s);
    db.drop_db().await;
}

async fn prepare_error(db: &TestDb, setup: &str, keys: &[&str]) -> String {
    let s = store(db).await;
    let f = Fixture::new();
    db.client().await.batch_execute(setup).await.expect("setup");
    let schema = id_name();
    let (_, target) = running(&s, &f, "target", LoadStrategy::Append, schema, keys, (1, 1)).await;
    match s.prepare_destination(&target).await {
        Err(StoreError::Unprocessable(m)) => m,
        other => panic!("expected Unprocessable, got {other:?}"),
    }
}

/// Tables that cannot take the rows are refused with a message saying what to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_tables_are_unprocessable_with_a_fix() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let m = prepare_error(
        &db,
        "CREATE TABLE public.target (id integer, name text)",
        &[],
    )
    .await;
    assert!(m.contains("`id`") && m.contains("integer"), "{m}");
    let db2 = TestDb::migrated(&SluiceMigrations).await;
    let m = prepare_error(
        &db2,
        "CREATE TABLE public.target (id bigint, name text); \
         INSERT INTO public.target VALUES (7, 'a'), (7, 'b');",
        &["id"],
    )
    .await;
    assert!(
        m.contains("same key (id)") && m.contains("duplicates"),
        "{m}"
    );
    let db3 = TestDb::migrated(&SluiceMigrations).await;
    let m = prepare_error(
        &db3,
        "CREATE TABLE public.target (id bigint, name text, owner text NOT NULL)",
        &[],
    )
    .await;
    assert!(m.contains("`owner`") && m.contains("NOT NULL"), "{m}");
    for d in [db, db2, db3] {
        d.drop_db().await;
    }
}

/// Cancelling a replace run drops its shadow table and keeps the destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_drops_the_shadow_table() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let s = store(&db).await;
    let f = Fixture::new();
    let schema = Schema {
        columns: vec![column("id", ColumnType::Integer)],
    };
    let (p, target) = running(
        &s,
        &f,
        "snap",
        LoadStrategy::Replace,
        schema,
        &["id"],
        (1, 2),
    )
    .await;
    s.prepare_destination(&target).await.expect("prepare");
    let shadows = |client: tokio_postgres::Client| async move {
        client
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_sluice\\_shadow\\_%'",
                &[],
            )
            .await
            .expect("count")
            .get::<_, i64>(0)
    };
    assert_eq!(shadows(db.client().await).await, 1);
    let entry = entry(LogStage::Cancel, "Cancelled");
    s.cancel_run(target.run_id, T0, &entry)
        .await
        .expect("cancel");
    assert_eq!(shadows(db.client().await).await, 0);
    assert_eq!(
        s.get_run(p.id, target.run_id).await.expect("run").status,
        RunStatus::Cancelled
    );
    drop(s);
    db.drop_db().await;
}

/// Destination tables go to the configured warehouse schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warehouse_schema_is_configurable() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let mut config = sluice_postgres::PgConfig::new(db.url.clone());
    config.warehouse_schema = ident("warehouse");
    let s = PgStore::connect(&config).await.expect("connect");
    let f = Fixture::new();
    let schema = Schema {
        columns: vec![column("id", ColumnType::Integer)],
    };
    let (_, target) = running(&s, &f, "facts", LoadStrategy::Append, schema, &[], (1, 1)).await;
    s.prepare_destination(&target).await.expect("prepare");
    let c = claim(&s, &f).await;
    let mut rows = ValidBatch::new(1);
    rows.push_row(1, [Some("42")]);
    s.commit_batch(commit(&c, &target, &rows, &[], 1))
        .await
        .expect("commit");
    let n: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM warehouse.facts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 1);
    drop(s);
    db.drop_db().await;
}

/// Partitions upserting the same keys at the same time (in opposite orders,
/// which invites deadlocks) all commit, and the last occurrence of each key wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_upserts_of_the_same_keys_converge() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let s = Arc::new(store(&db).await);
    let f = Fixture::new();
    let schema = id_name();
    let per = 200u64;
    let (_, target) = running(
        &s,
        &f,
        "hot",
        LoadStrategy::Upsert,
        schema,
        &["id"],
        (4, per),
    )
    .await;
    s.prepare_destination(&target).await.expect("prepare");
    let target = Arc::new(target);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let c = claim(&s, &f).await;
        let s = s.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let first = c.range.first_row;
            let mut rows = ValidBatch::new(2);
            for r in first..first + per {
                // Even partitions walk the keys up, odd ones down.
                let key = if c.range.index % 2 == 0 {
                    r % 50
                } else {
                    49 - r % 50
                };
                let (k, n) = (key.to_string(), format!("r{r}"));
                rows.push_row(r, [Some(k.as_str()), Some(n.as_str())]);
            }
            s.commit_batch(commit(&c, &target, &rows, &[], first + per - 1))
                .await
                .expect("commit")
        }));
    }
    let mut valid = 0;
    for t in tasks {
        let out = t.await.expect("join");
        valid += out.loaded + out.skipped;
    }
    assert_eq!(valid, 4 * per);
    let client = db.client().await;
    let rows = client
        .query("SELECT id, _sluice_row FROM public.hot ORDER BY id", &[])
        .await
        .expect("read");
    assert_eq!(rows.len(), 50);
    for r in rows {
        let id: i64 = r.get(0);
        let row: i64 = r.get(1);
        // The last row (in row order) with this key: partition 3 walks down.
        let expected = (3 * per as i64 + 1..=4 * per as i64)
            .rev()
            .find(|x| 49 - x % 50 == id)
            .expect("a row");
        assert_eq!(row, expected, "key {id}");
    }
    drop(s);
    db.drop_db().await;
}

/// Many concurrent finalisers: each ready run is finalised exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_finalisers_finalise_each_run_once() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let s = Arc::new(store(&db).await);
    let f = Fixture::new();
    let mut runs = Vec::new();
    for i in 0..6 {
        let p = f
            .pipeline(&*s, &format!("t{i}"), LoadStrategy::Append, false)
            .await;
        let run = f.new_run(&p);
        s.create_run(&run).await.expect("create");
        let claim = s
            .claim_extraction(&f.worker(0), T0, 1_000)
            .await
            .expect("claim")
            .expect("pending");
        let mut nothing = f.extraction(0, 0);
        nothing.files.clear();
        s.complete_extraction(&claim, Some(&nothing), T0)
            .await
            .expect("complete");
        runs.push(run.id);
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.finalize_ready_runs(T0).await }));
    }
    let mut finalised = Vec::new();
    for t in tasks {
        finalised.extend(
            t.await
                .expect("join")
                .expect("finalize")
                .into_iter()
                .map(|r| r.run.id),
        );
    }
    finalised.sort();
    assert_eq!(finalised, runs, "each run exactly once");
    for id in runs {
        let log = s.run_log(id).await.expect("log");
        assert_eq!(
            log.iter().filter(|e| e.stage == LogStage::Finalize).count(),
            1
        );
    }
    drop(s);
    db.drop_db().await;
}

/// A driver error reaches the caller as a short fixed message, never as the
/// driver's text (which may quote SQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_errors_do_not_leak() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let s = store(&db).await;
    let f = Fixture::new();
    let p = f.pipeline(&s, "t", LoadStrategy::Append, false).await;
    let run = f.new_run(&p);
    s.create_run(&run).await.expect("create");
    db.client()
        .await
        .batch_execute("DROP TABLE sluice.run_log CASCADE")
        .await
        .expect("break the schema");
    match s.run_log(run.id).await {
        Err(StoreError::Internal(m)) => {
            assert_eq!(m, "database error");
        }
        other => panic!("expected an internal error, got {other:?}"),
    }
    drop(s);
    db.drop_db().await;
}

/// Cancelling while partitions are committing batches (with errors, whose
/// foreign keys lock the run row in share mode) neither deadlocks nor fails:
/// the cancel wins, and every later commit is fenced out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_during_commits_is_clean() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let s = Arc::new(store(&db).await);
    let f = Fixture::new();
    let schema = id_name();
    let per = 100_000u64;
    let (p, target) = running(&s, &f, "busy", LoadStrategy::Replace, schema, &[], (4, per)).await;
    s.prepare_destination(&target).await.expect("prepare");
    let target = Arc::new(target);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let c = claim(&s, &f).await;
        let s = s.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut next = c.range.first_row;
            loop {
                let mut rows = ValidBatch::new(2);
                let mut errors = Vec::new();
                for r in next..next + 200 {
                    if r % 10 == 0 {
                        errors.push(RowError::new(r, "id", "x", "Expected integer"));
                    } else {
                        let k = r.to_string();
                        rows.push_row(r, [Some(k.as_str()), Some("n")]);
                    }
                }
                match s
                    .commit_batch(commit(&c, &target, &rows, &errors, next + 199))
                    .await
                {
                    Ok(_) => next += 200,
                    Err(CommitError::Fenced(_)) => return next,
                    Err(e) => panic!("commit failed: {e:?}"),
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let entry = entry(LogStage::Cancel, "Cancelled");
    s.cancel_run(target.run_id, T0, &entry)
        .await
        .expect("cancel");
    for t in tasks {
        t.await.expect("join");
    }
    assert_eq!(
        s.get_run(p.id, target.run_id).await.expect("run").status,
        RunStatus::Cancelled
    );
    drop(s);
    db.drop_db().await;
}
