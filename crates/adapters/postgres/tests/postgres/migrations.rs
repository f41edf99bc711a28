//! Embedded migrations under the advisory lock.

use sluice_postgres::{MIGRATIONS, migrate};

use crate::support::TestDb;

/// Two migrators start at the same moment on an empty database: both
/// succeed, and every migration is applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrators_apply_each_migration_once() {
    let db = TestDb::empty().await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let run = |url: String, barrier: std::sync::Arc<tokio::sync::Barrier>| async move {
        barrier.wait().await;
        migrate(&url).await
    };
    let (a, b) = tokio::join!(
        tokio::spawn(run(db.url.clone(), barrier.clone())),
        tokio::spawn(run(db.url.clone(), barrier.clone())),
    );
    let a = a.expect("join").expect("first migrator");
    let b = b.expect("join").expect("second migrator");
    let total = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .expect("embedded migrations")
        .len();
    assert_eq!(
        a + b,
        total,
        "each migration applied by exactly one migrator"
    );
    let client = db.client().await;
    let applied: i64 = client
        .query_one("SELECT count(*) FROM __diesel_schema_migrations", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(applied, i64::try_from(total).expect("count"));
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'sluice'",
            &[],
        )
        .await
        .expect("tables")
        .get(0);
    assert!(tables >= 10, "schema sluice is in place ({tables} tables)");
    // Running again is a no-op.
    assert_eq!(migrate(&db.url).await.expect("again"), 0);
    drop(client);
    db.drop_db().await;
}

/// `migrate` also works from a current-thread runtime (a CLI command's), since
/// the synchronous harness runs on a blocking thread.
#[tokio::test]
async fn migrate_runs_on_a_current_thread_runtime() {
    let db = TestDb::empty().await;
    assert!(migrate(&db.url).await.expect("migrate") >= 1);
    db.drop_db().await;
}
