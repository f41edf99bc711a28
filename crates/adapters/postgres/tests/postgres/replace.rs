//! The `replace` swap keeps what users attached to the destination table:
//! grants, indexes, comments, row-level security and its policies, views
//! (and views on those), hand-added columns, sequences; readers see the old
//! or the new contents, never a mix; a failed run, or a swap that cannot
//! carry something over, leaves everything as it was.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sluice_application::ports::{BulkLoader, RunStore, StoreError, WorkQueue};
use sluice_application::testing::contract::{Fixture, T0};
use sluice_domain::ids::RunId;
use sluice_domain::pipeline::{LoadStrategy, Pipeline};
use sluice_domain::run::LogStage;
use sluice_domain::status::RunStatus;
use sluice_domain::validation::ValidBatch;
use sluice_postgres::PgStore;
use tokio::sync::Barrier;
use tokio_postgres::Client;

use crate::destination::{claim, commit, entry};
use crate::support::{SluiceMigrations, TestDb, admin, store};

/// Loads `rows` (id, name) through a replace run of `p`, up to the point
/// where every partition is committed; the run is not finalised yet.
async fn load(s: &PgStore, f: &Fixture, p: &Pipeline, rows: &[(i64, &str)]) -> RunId {
    let run = f.running_run(s, p, 1, rows.len() as u64).await;
    let target = f.target(p, run, vec![run]);
    s.prepare_destination(&target).await.expect("prepare");
    let c = claim(s, f).await;
    let mut batch = ValidBatch::new(2);
    for (i, (id, name)) in rows.iter().enumerate() {
        let id = id.to_string();
        batch.push_row(i as u64 + 1, [Some(id.as_str()), Some(*name)]);
    }
    s.commit_batch(commit(&c, &target, &batch, &[], rows.len() as u64))
        .await
        .expect("commit");
    run
}

/// Finalises what is ready and returns the run's status.
async fn finalize(s: &PgStore, p: &Pipeline, run: RunId) -> RunStatus {
    s.finalize_ready_runs(T0).await.expect("finalize");
    s.get_run(p.id, run).await.expect("run").status
}

async fn one_i64(c: &Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.expect(sql).get(0)
}

async fn one_text(c: &Client, sql: &str) -> Option<String> {
    c.query_one(sql, &[]).await.expect(sql).get(0)
}

/// Everything the test attached, as one comparable text: the catalog's view
/// of the table (columns, indexes, constraints, grants, comments, policies,
/// RLS flags, views and their grants) and the rows.
async fn snapshot(c: &Client) -> String {
    let sql = "SELECT concat_ws(E'\\n', \
        (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) \
           FROM pg_attribute WHERE attrelid = 'public.customers'::regclass AND attnum > 0 AND NOT attisdropped), \
        (SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'customers'), \
        (SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), '; ' ORDER BY conname) \
           FROM pg_constraint WHERE conrelid = 'public.customers'::regclass), \
        (SELECT relacl::text || relrowsecurity::text FROM pg_class WHERE oid = 'public.customers'::regclass), \
        obj_description('public.customers'::regclass, 'pg_class'), \
        col_description('public.customers'::regclass, 2), \
        (SELECT string_agg(policyname || ' ' || array_to_string(roles, ',') || ' ' || qual, '; ') \
           FROM pg_policies WHERE tablename = 'customers'), \
        (SELECT string_agg(viewname || ' ' || definition, '; ' ORDER BY viewname) FROM pg_views \
           WHERE schemaname = 'public'), \
        (SELECT string_agg(relname || ' ' || relacl::text, '; ' ORDER BY relname) FROM pg_class \
           WHERE relkind = 'v' AND relnamespace = 'public'::regnamespace), \
        (SELECT string_agg(id || ':' || name || ':' || coalesce(notes, '-'), ',' ORDER BY id) \
           FROM public.customers))";
    c.query_one(sql, &[])
        .await
        .expect("snapshot")
        .get::<_, Option<String>>(0)
        .unwrap_or_default()
}

/// A database with a replace pipeline over `customers` (id, name).
async fn replace_pipeline() -> (TestDb, PgStore, Fixture, Pipeline) {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let s = store(&db).await;
    let f = Fixture::new();
    let p = f
        .pipeline(&s, "customers", LoadStrategy::Replace, false)
        .await;
    (db, s, f, p)
}

/// A login-less role of its own (roles are cluster-wide), dropped at the end.
struct Role {
    name: String,
}

impl Role {
    async fn new() -> Self {
        let name = format!("sluice_analyst_{:016x}", rand::random::<u64>());
        admin()
            .await
            .batch_execute(&format!("CREATE ROLE {name}"))
            .await
            .expect("create role");
        Self { name }
    }

    async fn drop(self) {
        let _ = admin()
            .await
            .batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name))
            .await;
    }
}

/// Acceptance: after a replace run on a table with a grant to another role,
/// an extra index, comments, an RLS policy, dependent views and hand-added
/// columns, all of them are still there and work with the new rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replace_keeps_what_users_attached() {
    let (db, s, f, p) = replace_pipeline().await;
    let role = Role::new().await;
    let analyst = role.name.as_str();
    let first = load(&s, &f, &p, &[(1, "ada"), (2, "grace"), (3, "alan")]).await;
    assert_eq!(finalize(&s, &p, first).await, RunStatus::Completed);

    let sql = db.client().await;
    sql.batch_execute(&format!(
        "GRANT SELECT ON public.customers TO {analyst};
         CREATE INDEX customers_name_idx ON public.customers (name);
         COMMENT ON TABLE public.customers IS 'Customer master data';
         COMMENT ON COLUMN public.customers.name IS 'Full name';
         ALTER TABLE public.customers ADD COLUMN notes text;
         ALTER TABLE public.customers ADD COLUMN ticket bigserial;
         UPDATE public.customers SET notes = 'hand-written';
         ALTER TABLE public.customers ENABLE ROW LEVEL SECURITY;
         CREATE POLICY small_ids ON public.customers FOR SELECT TO {analyst} USING (id < 100);
         CREATE VIEW public.customer_names AS SELECT id, name FROM public.customers;
         GRANT SELECT ON public.customer_names TO {analyst};
         CREATE VIEW public.first_customers AS SELECT name FROM public.customer_names WHERE id <= 200;"
    ))
    .await
    .expect("attach");
    let before = snapshot(&sql).await;

    let second = load(
        &s,
        &f,
        &p,
        &[(10, "edsger"), (20, "barbara"), (300, "donald")],
    )
    .await;
    assert_eq!(finalize(&s, &p, second).await, RunStatus::Completed);

    // The new rows, with the hand-added columns: NULL, and a fresh serial.
    let rows = sql
        .query(
            "SELECT id, name, notes, ticket FROM public.customers ORDER BY id",
            &[],
        )
        .await
        .expect("rows");
    let got: Vec<(i64, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            (10, "edsger".to_owned(), None),
            (20, "barbara".to_owned(), None),
            (300, "donald".to_owned(), None),
        ]
    );
    let tickets: Vec<i64> = rows.iter().map(|r| r.get(3)).collect();
    assert!(
        tickets.iter().all(|t| *t > 3),
        "the serial sequence carried on: {tickets:?}"
    );
    assert!(
        one_i64(&sql, "SELECT nextval('public.customers_ticket_seq')").await > 3,
        "the sequence survived the old table"
    );

    // The other role reads the table (through its policy) and the view.
    sql.batch_execute(&format!("SET ROLE {analyst}"))
        .await
        .expect("set role");
    assert_eq!(
        one_i64(&sql, "SELECT count(*) FROM public.customers").await,
        2,
        "the grant works and the RLS policy still filters (id < 100)"
    );
    assert_eq!(
        one_i64(&sql, "SELECT count(*) FROM public.customer_names").await,
        3,
        "the view's grant works (views read as their owner)"
    );
    sql.batch_execute("RESET ROLE").await.expect("reset role");
    assert_eq!(
        one_text(
            &sql,
            "SELECT string_agg(name, ',' ORDER BY name) FROM public.first_customers"
        )
        .await
        .as_deref(),
        Some("barbara,edsger"),
        "the view on the view answers the new rows"
    );

    // The index is there under its name, and used.
    sql.batch_execute("SET enable_seqscan = off")
        .await
        .expect("planner");
    let plan: Vec<String> = sql
        .query(
            "EXPLAIN SELECT * FROM public.customers WHERE name = 'donald'",
            &[],
        )
        .await
        .expect("explain")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.iter().any(|l| l.contains("customers_name_idx")),
        "{plan:?}"
    );
    sql.batch_execute("RESET enable_seqscan")
        .await
        .expect("planner");

    // Catalog-wise everything is as before, but the rows.
    let after = snapshot(&sql).await;
    let strip_rows = |s: &str| s.rsplit_once('\n').map(|(a, _)| a.to_owned());
    assert_eq!(strip_rows(&before), strip_rows(&after));
    assert_eq!(
        one_i64(
            &sql,
            "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_sluice\\_%'"
        )
        .await,
        0,
        "no shadow, old table or temporary index is left"
    );

    drop(s);
    db.drop_db().await;
    role.drop().await;
}

/// A failed replace run leaves the table and all it carries as it was; a
/// run whose swap is refused (a materialized view reads the table) fails
/// with the reason in plain words instead of staying `running`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_refused_replace_runs_change_nothing() {
    let (db, s, f, p) = replace_pipeline().await;
    let first = load(&s, &f, &p, &[(1, "ada"), (2, "grace")]).await;
    assert_eq!(finalize(&s, &p, first).await, RunStatus::Completed);
    let sql = db.client().await;
    sql.batch_execute(
        "CREATE INDEX customers_name_idx ON public.customers (name);
         ALTER TABLE public.customers ADD COLUMN notes text;
         UPDATE public.customers SET notes = 'kept';
         COMMENT ON TABLE public.customers IS 'kept';
         CREATE VIEW public.customer_names AS SELECT id, name FROM public.customers;",
    )
    .await
    .expect("attach");
    let before = snapshot(&sql).await;

    // A run that fails after loading everything.
    let failed = load(&s, &f, &p, &[(7, "x")]).await;
    s.fail_run(failed, &entry(LogStage::Load, "Too many errors"), T0)
        .await
        .expect("fail");
    assert_eq!(snapshot(&sql).await, before);

    // A swap that cannot carry over a materialized view created while the
    // run loaded.
    let refused = load(&s, &f, &p, &[(8, "y")]).await;
    sql.batch_execute(
        "CREATE MATERIALIZED VIEW public.name_counts AS SELECT count(*) AS n FROM public.customers",
    )
    .await
    .expect("matview");
    let before = snapshot(&sql).await;
    assert_eq!(finalize(&s, &p, refused).await, RunStatus::Failed);
    let run = s.get_run(p.id, refused).await.expect("run");
    let log = one_text(
        &sql,
        &format!(
            "SELECT message FROM sluice.run_log WHERE run_id = '{refused}' ORDER BY seq DESC LIMIT 1"
        ),
    )
    .await
    .unwrap_or_default();
    let message = run.error.clone().unwrap_or_default();
    assert!(
        message.contains("materialized view public.name_counts depends on it")
            && message.contains("`customers`")
            && !message.contains("_sluice_"),
        "{message}"
    );
    assert!(log.contains("left as it was"), "{log}");
    assert_eq!(snapshot(&sql).await, before);
    assert_eq!(
        one_i64(&sql, "SELECT n FROM public.name_counts").await,
        2,
        "the materialized view is untouched"
    );
    // With the materialized view in place, the next run is refused before
    // it loads anything.
    let run = f.running_run(&s, &p, 1, 1).await;
    let e = s
        .prepare_destination(&f.target(&p, run, vec![run]))
        .await
        .expect_err("refused");
    assert!(
        matches!(&e, StoreError::Unprocessable(m)
            if m.contains("materialized view public.name_counts depends on it")),
        "{e:?}"
    );
    assert_eq!(
        one_i64(
            &sql,
            "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_sluice\\_%'"
        )
        .await,
        0
    );
    drop(s);
    db.drop_db().await;
}

/// Readers that query the table and a view on it while the swap runs see
/// the old contents or the new ones, never a mix and never an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_see_old_or_new_during_the_swap() {
    let (db, s, f, p) = replace_pipeline().await;
    let old: Vec<(i64, String)> = (1..=2_000).map(|i| (i, format!("old {i}"))).collect();
    let old_rows: Vec<(i64, &str)> = old.iter().map(|(i, n)| (*i, n.as_str())).collect();
    let first = load(&s, &f, &p, &old_rows).await;
    assert_eq!(finalize(&s, &p, first).await, RunStatus::Completed);
    let setup = db.client().await;
    setup
        .batch_execute(
            "CREATE INDEX customers_name_idx ON public.customers (name);
             CREATE VIEW public.customer_names AS SELECT id, name FROM public.customers;",
        )
        .await
        .expect("attach");

    let new: Vec<(i64, String)> = (5_001..=9_000).map(|i| (i, format!("new {i}"))).collect();
    let new_rows: Vec<(i64, &str)> = new.iter().map(|(i, n)| (*i, n.as_str())).collect();
    let second = load(&s, &f, &p, &new_rows).await;

    let old_sum = (1..=2_000).sum::<i64>();
    let new_sum = (5_001..=9_000).sum::<i64>();
    let swapped = Arc::new(AtomicBool::new(false));
    // Both readers have read the old contents once before the swap starts.
    let started = Arc::new(Barrier::new(3));
    let mut readers = Vec::new();
    for relation in ["public.customers", "public.customer_names"] {
        let client = db.client().await;
        let swapped = swapped.clone();
        let started = started.clone();
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let q = format!("SELECT count(*), coalesce(sum(id), 0)::bigint FROM {relation}");
            loop {
                let done = swapped.load(Ordering::SeqCst);
                let row = client.query_one(&q, &[]).await.expect("read");
                let obs = (row.get::<_, i64>(0), row.get::<_, i64>(1));
                seen.push(obs);
                if seen.len() == 1 {
                    started.wait().await;
                }
                // A read that began after the swap committed must see it.
                if done {
                    break;
                }
            }
            seen
        }));
    }
    started.wait().await;
    assert_eq!(finalize(&s, &p, second).await, RunStatus::Completed);
    swapped.store(true, Ordering::SeqCst);
    for r in readers {
        let seen = r.await.expect("reader");
        assert_eq!(seen.first(), Some(&(2_000, old_sum)));
        for obs in &seen {
            assert!(
                *obs == (2_000, old_sum) || *obs == (4_000, new_sum),
                "a reader saw {obs:?}"
            );
        }
        assert_eq!(seen.last(), Some(&(4_000, new_sum)));
    }
    drop(s);
    db.drop_db().await;
}
