//! Embedded migrations, run under an advisory lock so that any number of
//! processes starting at once (`sluice migrate`, `sluice serve` replicas,
//! workers) apply each migration exactly once.

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use sluice_application::ports::StoreError;

use crate::config::PgConfig;

/// The schema migrations, compiled into the binary. Never edit one that has
/// landed: add a new one.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Key of the session-level advisory lock held while migrating ("sluice" in ASCII).
const MIGRATION_LOCK: i64 = 0x736c_7569_6365;

/// Applies every pending migration to the database at `url` and returns how
/// many were applied. Concurrent callers queue on an advisory lock; the
/// later ones find nothing left to do.
pub async fn migrate(url: &str) -> Result<usize, StoreError> {
    migrate_with(&PgConfig::new(url)).await
}

/// [`migrate`] with the connection settings of `config` (TLS and its CA
/// file, timeouts).
pub async fn migrate_with(config: &PgConfig) -> Result<usize, StoreError> {
    let driver = crate::pool::driver_config(config)?;
    let tls = crate::pool::tls_for(&driver, config)?;
    let conn = crate::pool::diesel_connection(driver, tls)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot connect to migrate");
            StoreError::Unavailable("database unavailable".into())
        })?;
    tokio::task::spawn_blocking(move || migrate_blocking(conn))
        .await
        .map_err(|_| StoreError::Internal("migration task failed".into()))?
}

#[derive(QueryableByName)]
struct SchemaName {
    #[diesel(sql_type = Text)]
    schema: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Points the session at the schema whose `__diesel_schema_migrations`
/// records what was applied. diesel finds (and creates) that table through
/// the `search_path`, whose default `"$user", public` changes meaning once
/// migrations create schema `sluice` when the database user is also named
/// `sluice` (the embedded cluster's, a common choice elsewhere): the first
/// start records its migrations in `public`, a second one would then look in
/// an empty `sluice.__diesel_schema_migrations` and run everything again.
/// With no such table yet, the default applies.
fn pin_migration_table(conn: &mut AsyncConnectionWrapper<AsyncPgConnection>) -> Result<(), String> {
    let found: Vec<SchemaName> = diesel::sql_query(
        "SELECT n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relname = '__diesel_schema_migrations' AND c.relkind IN ('r', 'p') ORDER BY n.nspname",
    )
    .load(conn)
    .map_err(|e| format!("cannot look for the migrations table: {e}"))?;
    let mut best: Option<(i64, String)> = None;
    for s in found {
        let quoted = quote_ident(&s.schema);
        let rows: Vec<Count> = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM {quoted}.__diesel_schema_migrations"
        ))
        .load(conn)
        .map_err(|e| format!("cannot read {quoted}.__diesel_schema_migrations: {e}"))?;
        let n = rows.first().map_or(0, |c| c.n);
        if best.as_ref().is_none_or(|(most, _)| n > *most) {
            best = Some((n, quoted));
        }
    }
    if let Some((_, schema)) = best {
        diesel::sql_query(format!("SET search_path TO {schema}, public"))
            .execute(conn)
            .map_err(|e| format!("cannot set the search path: {e}"))?;
    }
    Ok(())
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// diesel's migration harness is synchronous: it runs on a blocking thread
/// over diesel-async's connection wrapper (no libpq needed), which drives
/// the connection through the caller's runtime.
fn migrate_blocking(conn: AsyncPgConnection) -> Result<usize, StoreError> {
    let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(&mut conn)
        .map_err(|e| crate::error::DbError::from(e).into_store("migration lock"))?;
    let applied = pin_migration_table(&mut conn).and_then(|()| {
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|e| e.to_string())
    });
    let applied = applied.map(|done| {
        for m in &done {
            tracing::info!(migration = %m, "applied migration");
        }
        done.len()
    });
    // Closing the connection would release the lock too; unlock explicitly
    // so a failure below is visible in the log.
    if let Err(e) = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(&mut conn)
    {
        tracing::warn!(error = %e, "cannot release the migration lock");
    }
    applied.map_err(|e| {
        tracing::error!(error = %e, "migration failed");
        StoreError::Internal("database migration failed".into())
    })
}

#[cfg(test)]
mod tests {
    use diesel::migration::MigrationSource;

    use super::MIGRATIONS;

    /// diesel knows a migration by the version its directory name starts
    /// with: two directories with one version are one migration to it, and
    /// only one of them is ever applied. Every directory is embedded, and
    /// under a version of its own.
    #[test]
    fn every_migration_has_a_version_of_its_own() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut versions: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations directory")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.is_dir())
            .map(|p| {
                let name = p.file_name().expect("name").to_string_lossy().into_owned();
                name.split('_').next().expect("version").replace('-', "")
            })
            .collect();
        let directories = versions.len();
        versions.sort();
        versions.dedup();
        assert_eq!(
            versions.len(),
            directories,
            "a version used twice: {versions:?}"
        );
        let embedded = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
            .expect("embedded migrations");
        let mut embedded: Vec<String> = embedded
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
        embedded.sort();
        assert_eq!(embedded, versions);
    }
}
