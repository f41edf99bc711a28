//! A fresh database per test: [`sluice_test_db`] with this crate's
//! migrations, so each migrated database is a clone of one template made
//! once per set of migrations.

use std::path::PathBuf;

use sluice_postgres::{PgConfig, PgStore, migrate};
use sluice_test_db::Migrations;

pub use sluice_test_db::{TestDb, admin, cluster_url};

/// The schema of this crate's embedded migrations, applied by [`migrate`]:
/// `TestDb::migrated(&SluiceMigrations)`.
pub struct SluiceMigrations;

impl Migrations for SluiceMigrations {
    fn dir(&self) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
    }

    async fn apply(&self, url: &str) -> Result<(), String> {
        migrate(url).await.map(drop).map_err(|e| e.to_string())
    }
}

/// A store on `db`, with small pools.
pub async fn store(db: &TestDb) -> PgStore {
    let mut config = PgConfig::new(db.url.clone());
    config.pool_size = 6;
    config.loader_pool_size = 4;
    PgStore::connect(&config).await.expect("connect store")
}

/// A store on a migrated database, and the database (dropped with it).
pub async fn fresh_store() -> (PgStore, TestDb) {
    let db = TestDb::migrated(&SluiceMigrations).await;
    (store(&db).await, db)
}
