//! # sluice-test-db
//!
//! A PostgreSQL database of its own for every test that needs one, on the
//! cluster `DATABASE_URL` names (`cargo xtask test` starts a private one).
//! Both database suites use it: the PostgreSQL adapter's integration tests and
//! the black-box end-to-end tests.
//!
//! [`TestDb::migrated`] does not migrate each test's database: it clones a
//! template database (`CREATE DATABASE … TEMPLATE …`), the approach of
//! crates.io's `crates_io_test_db`. The template is named after a digest of
//! the migration files, so it is made once per set of migrations and reused
//! by every later test and every later run on the same cluster; a changed or
//! added migration gets a template of its own.
//!
//! cargo-nextest runs each test in its own process, so the first tests of a
//! run may all find the template missing. They queue on an advisory lock;
//! the first one creates and migrates it, and marks it a template
//! (`IS_TEMPLATE`, no connections allowed) only as its last step, so a
//! half-made one whose maker crashed is recognised and made again. The others
//! find it ready when they get the lock.
//!
//! Each database is dropped when its [`TestDb`] is, also when the test fails
//! and unwinds; the databases of test processes that were killed are dropped
//! by the next test that starts.
//!
//! ```no_run
//! use std::path::PathBuf;
//! use sluice_test_db::{Migrations, TestDb};
//!
//! struct Schema;
//!
//! impl Migrations for Schema {
//!     fn dir(&self) -> PathBuf {
//!         PathBuf::from("crates/adapters/postgres/migrations")
//!     }
//!
//!     async fn apply(&self, url: &str) -> Result<(), String> {
//!         // e.g. `sluice_postgres::migrate(url)`, or run `sluice migrate`
//!         let _ = url;
//!         Ok(())
//!     }
//! }
//!
//! # async fn example() {
//! let db = TestDb::migrated(&Schema).await;
//! let client = db.client().await;
//! client.batch_execute("SELECT 1").await.expect("query");
//! // `db` is dropped here, and its database with it.
//! # }
//! ```

use std::future::Future;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio_postgres::{Client, NoTls};

/// Names of the per-test databases: this, the test process's pid, `_`, and a
/// random suffix (the pid tells the sweep whose database it is).
const TEST_PREFIX: &str = "sluice_test_";

/// Names of template databases: this and a digest of the migration files.
const TEMPLATE_PREFIX: &str = "sluice_template_";

/// Key of the advisory lock held while a template is made ("sluicetd").
const TEMPLATE_LOCK: i64 = 0x736c_7569_6365_7464;

/// How a suite brings an empty database to the current schema.
pub trait Migrations: Sync {
    /// The directory of the migration files. Their names and contents name
    /// the template, so a new or edited migration never meets a stale one.
    fn dir(&self) -> PathBuf;

    /// Migrates the empty database at `url`.
    fn apply(&self, url: &str) -> impl Future<Output = Result<(), String>> + Send;
}

/// The cluster's superuser URL from `DATABASE_URL`; the tests fail (never
/// skip) without it.
pub fn cluster_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "DATABASE_URL is not set: these tests need a PostgreSQL 15+ superuser URL \
                 (run them with `cargo xtask test`, which starts a private cluster)"
            )
        })
}

/// `url` with its database replaced by `db` (its query string kept).
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

/// A connection to the database at `url`, driven on the current runtime.
async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test cluster: {e}"));
    tokio::spawn(conn);
    client
}

/// A connection to the cluster's maintenance database (`DATABASE_URL`).
pub async fn admin() -> Client {
    connect(&cluster_url()).await
}

/// One test's database, dropped with this value.
#[derive(Debug)]
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Its URL (the cluster URL with the database replaced).
    pub url: String,
    admin_url: String,
    dropped: bool,
}

impl TestDb {
    /// A new, empty database (no migrations), for tests of migrating itself.
    pub async fn empty() -> Self {
        Self::create(&admin().await, None).await
    }

    /// A new database with the schema of `migrations`, cloned from their
    /// template (made first if this cluster has none yet).
    pub async fn migrated(migrations: &impl Migrations) -> Self {
        let admin = admin().await;
        let template = template(&admin, migrations).await;
        Self::create(&admin, Some(&template)).await
    }

    async fn create(admin: &Client, template: Option<&str>) -> Self {
        let admin_url = cluster_url();
        sweep(admin).await;
        let name = format!(
            "{TEST_PREFIX}{}_{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let from = template
            .map(|t| format!(" TEMPLATE \"{t}\""))
            .unwrap_or_default();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\"{from}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}{from}: {e}"));
        Self {
            url: url_for(&admin_url, &name),
            name,
            admin_url,
            dropped: false,
        }
    }

    /// A plain client on this database, to set up or inspect rows directly.
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }

    /// Drops the database now (closing every connection to it first).
    pub async fn drop_db(mut self) {
        drop_database(&self.admin_url, &self.name).await;
        self.dropped = true;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside the test's runtime or outside any: a thread
        // with its own runtime works in both.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(drop_database(&admin_url, &name));
        })
        .join();
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    if let Ok((client, conn)) = tokio_postgres::connect(admin_url, NoTls).await {
        tokio::spawn(conn);
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Drops the databases of test processes that have exited without dropping
/// theirs (killed, or aborted).
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
            .strip_prefix(TEST_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && !pid_alive(p)) {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

/// The name of the template of `migrations`, made first if missing.
async fn template(admin: &Client, migrations: &impl Migrations) -> String {
    let name = format!("{TEMPLATE_PREFIX}{}", digest(&migrations.dir()));
    if is_template(admin, &name).await == Some(true) {
        return name;
    }
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK])
        .await
        .expect("take the template lock");
    let made = make_template(admin, &name, migrations).await;
    // Closing the connection would release the lock as well.
    let _ = admin
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK])
        .await;
    if let Err(e) = made {
        panic!("cannot make the template database {name}: {e}");
    }
    name
}

/// `Some(true)` for a finished template, `Some(false)` for a database of that
/// name still being made (or left half-made), `None` when there is none.
async fn is_template(admin: &Client, name: &str) -> Option<bool> {
    admin
        .query_opt(
            "SELECT datistemplate FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .expect("look up the template database")
        .map(|row| row.get(0))
}

/// Makes the template; the caller holds the template lock.
async fn make_template(
    admin: &Client,
    name: &str,
    migrations: &impl Migrations,
) -> Result<(), String> {
    let sql = |e: tokio_postgres::Error| e.to_string();
    match is_template(admin, name).await {
        // Made by another process while this one waited for the lock.
        Some(true) => return Ok(()),
        // Its maker died before finishing it.
        Some(false) => admin
            .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .await
            .map_err(sql)?,
        None => {}
    }
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(sql)?;
    migrations.apply(&url_for(&cluster_url(), name)).await?;
    // The last step: from here on it counts as made. No connections are
    // allowed, since `CREATE DATABASE … TEMPLATE` needs a template nobody
    // is connected to.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{name}\" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
        ))
        .await
        .map_err(sql)
}

/// The first 16 hex digits of a SHA-256 over the files under `dir` (their
/// relative paths and contents, in path order).
fn digest(dir: &Path) -> String {
    let mut files = Vec::new();
    collect_files(dir, &mut files);
    assert!(
        !files.is_empty(),
        "no migration files under {}",
        dir.display()
    );
    files.sort();
    let mut hash = Sha256::new();
    for path in files {
        let relative = path.strip_prefix(dir).unwrap_or(&path);
        hash.update(relative.to_string_lossy().as_bytes());
        hash.update([0]);
        let content =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        hash.update(&content);
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..8])
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read the migrations at {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_digest_follows_names_and_contents() {
        let dir = std::env::temp_dir().join(format!("sluice-test-db-{}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("2026-01-01_a")).expect("mkdir");
        std::fs::write(dir.join("2026-01-01_a/up.sql"), "CREATE TABLE t (a int);").expect("w");
        let first = digest(&dir);
        assert_eq!(first.len(), 16);
        assert_eq!(digest(&dir), first, "stable");
        std::fs::write(dir.join("2026-01-01_a/up.sql"), "CREATE TABLE t (b int);").expect("w");
        let edited = digest(&dir);
        assert_ne!(edited, first, "an edited migration is another schema");
        std::fs::create_dir_all(dir.join("2026-01-02_b")).expect("mkdir");
        std::fs::write(dir.join("2026-01-02_b/up.sql"), "").expect("w");
        assert_ne!(digest(&dir), edited, "an added migration is another schema");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
