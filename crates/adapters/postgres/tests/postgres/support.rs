//! A fresh database per test on the cluster named by `DATABASE_URL`.
//!
//! Databases are called `sluice_test_<pid>_<random>`; a test drops its own
//! when it can, and every test first sweeps databases left by test processes
//! that no longer exist (nextest runs one process per test).

use sluice_postgres::{PgConfig, PgStore, migrate};
use tokio_postgres::{Client, NoTls};

/// The cluster URL; tests fail (never skip) without it.
pub fn cluster_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "DATABASE_URL is not set: these tests need a PostgreSQL 15+ superuser URL \
             (run them with `cargo xtask test`, which starts a private cluster)"
        )
    })
}

/// `url` with its database replaced by `db`.
pub fn url_for(url: &str, db: &str) -> String {
    let scheme_end = url
        .find("://")
        .map(|i| i + 3)
        .expect("DATABASE_URL must be a postgres:// URL");
    let (base, rest) = url.split_at(scheme_end);
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{base}{authority}/{db}{query}")
}

/// A connection to the cluster's maintenance database.
pub async fn admin() -> Client {
    let url = cluster_url();
    let (client, conn) = tokio_postgres::connect(&url, NoTls)
        .await
        .expect("connect to DATABASE_URL");
    tokio::spawn(conn);
    client
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Drops databases of test processes that have exited.
async fn sweep(admin: &Client) {
    let rows = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'sluice\\_test\\_%'",
            &[],
        )
        .await
        .expect("list test databases");
    for row in rows {
        let name: String = row.get(0);
        let pid = name
            .strip_prefix("sluice_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && !pid_alive(p)) {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

/// One test's database.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl TestDb {
    /// Creates an empty database (no migrations).
    pub async fn empty() -> Self {
        let admin = admin().await;
        sweep(&admin).await;
        let name = format!(
            "sluice_test_{}_{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        let url = url_for(&cluster_url(), &name);
        Self { name, url }
    }

    /// Creates a migrated database.
    pub async fn migrated() -> Self {
        let db = Self::empty().await;
        migrate(&db.url).await.expect("migrate");
        db
    }

    /// A store on this database, with small pools.
    pub async fn store(&self) -> PgStore {
        let mut config = PgConfig::new(self.url.clone());
        config.pool_size = 6;
        config.loader_pool_size = 4;
        PgStore::connect(&config).await.expect("connect store")
    }

    /// A plain client on this database, to set up or inspect rows directly.
    pub async fn client(&self) -> Client {
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("connect test database");
        tokio::spawn(conn);
        client
    }

    /// Drops the database (closing the store's connections first).
    pub async fn drop_db(self) {
        let _ = admin()
            .await
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

/// A migrated database and a store on it (the database is swept later).
pub async fn fresh_store() -> PgStore {
    TestDb::migrated().await.store().await
}

#[test]
fn urls_get_their_database_replaced() {
    assert_eq!(
        url_for("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        url_for("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(url_for("postgresql://h:1", "x"), "postgresql://h:1/x");
}
