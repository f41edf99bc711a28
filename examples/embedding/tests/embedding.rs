//! The embedding service of this crate driven end to end twice, over the
//! same local directory: once on the in-memory store, once on PostgreSQL.
//! Only the store differs; every assertion is the same.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use sluice_application::ports::Store;
use sluice_application::testing::{DestinationProbe, InMemoryStore};
use sluice_domain::status::RunStatus;
use sluice_embedding_example::Ingestion;
use sluice_postgres::{PgConfig, PgStore};
use sluice_test_db::{Migrations, TestDb};

/// A directory the service may read (its allowed local root), holding the
/// connector's root `landing/` with two CSV files and a file the pipeline's
/// pattern leaves out.
fn landing() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("landing");
    std::fs::create_dir_all(root.join("customers")).expect("mkdir");
    std::fs::write(
        root.join("customers/a.csv"),
        "id,name,age\n1,Ada,36\n2,Grace,not a number\n3,Edsger,72\n",
    )
    .expect("write a.csv");
    std::fs::write(
        root.join("customers/b.csv"),
        "id,name,age\n4,Barbara,\n5,Donald,84\n",
    )
    .expect("write b.csv");
    std::fs::write(root.join("customers/README.txt"), "not a CSV file").expect("write");
    (dir, root)
}

fn customers() -> serde_json::Value {
    json!({
        "name": "customers",
        "source": {"prefix": "customers/", "pattern": "*.csv"},
        "schema": {"columns": [
            {"name": "id", "type": "integer"},
            {"name": "name", "type": "string"},
            {"name": "age", "type": "integer"}
        ]},
        "destination": {"table": "customers", "keyColumns": ["id"]},
        "loadStrategy": "upsert",
        "partitions": 2
    })
}

/// Drives the service over `store` and checks what it reports and loads.
async fn load_customers<S>(store: Arc<S>, allowed: &Path, root: &Path)
where
    S: Store + DestinationProbe,
{
    let sluice = Ingestion::new(store.clone(), allowed)
        .await
        .expect("sluice over the store");
    let pipeline = sluice
        .create_pipeline(root, customers())
        .await
        .expect("connector and pipeline");

    let progress = sluice.run_until_idle(&pipeline).await.expect("run");
    assert_eq!(progress.status, RunStatus::CompletedWithErrors);
    assert_eq!(progress.total_rows, 5);
    assert_eq!(progress.processed_rows, 5);
    assert_eq!(progress.failed_rows, 1);
    assert_eq!(progress.skipped_rows, 0);
    assert_eq!(progress.partitions, progress.completed_partitions);
    let error = progress.validation_errors.first().expect("one error");
    assert_eq!((error.row, error.column.as_str()), (2, "age"), "{error:?}");

    // The warehouse holds the four valid rows, each loaded by this run.
    let rows = store.table_rows("customers").await.expect("table created");
    let loaded: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.values[0].as_deref().unwrap_or_default(),
                r.values[1].as_deref().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        loaded,
        [
            ("1", "Ada"),
            ("3", "Edsger"),
            ("4", "Barbara"),
            ("5", "Donald")
        ]
    );
    // An empty field of an integer column is NULL.
    let ages: Vec<Option<&str>> = rows.iter().map(|r| r.values[2].as_deref()).collect();
    assert_eq!(ages, [Some("36"), Some("72"), None, Some("84")]);
    let run = sluice
        .use_cases()
        .list_runs(sluice.principal(), pipeline.id, &Default::default())
        .await
        .expect("runs");
    assert_eq!(run.items.len(), 1);
    assert!(rows.iter().all(|r| r.run_id == run.items[0].id.to_string()));

    // The file ledger holds both files: a second run finds nothing new.
    let again = sluice.run_until_idle(&pipeline).await.expect("second run");
    assert_eq!(again.status, RunStatus::Completed);
    assert_eq!(again.total_rows, 0);
    assert!(
        again
            .log
            .iter()
            .any(|e| e.message == "No new files (2 already loaded)"),
        "{:?}",
        again.log
    );
}

#[tokio::test]
async fn an_embedding_service_loads_a_local_directory_into_the_in_memory_store() {
    let (dir, root) = landing();
    load_customers(Arc::new(InMemoryStore::new()), dir.path(), &root).await;
}

/// The PostgreSQL adapter's migrations, applied by `sluice_postgres::migrate`
/// (so the database is a clone of the template the adapter's own tests use).
struct Schema;

impl Migrations for Schema {
    fn dir(&self) -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../crates/adapters/postgres/migrations"
        ))
    }

    async fn apply(&self, url: &str) -> Result<(), String> {
        sluice_postgres::migrate(url)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[tokio::test]
async fn an_embedding_service_loads_a_local_directory_into_postgresql() {
    let db = TestDb::migrated(&Schema).await;
    let store = PgStore::connect(&PgConfig::new(db.url.clone()))
        .await
        .expect("connect");
    let (dir, root) = landing();
    load_customers(Arc::new(store), dir.path(), &root).await;
}
