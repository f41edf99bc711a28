//! SQL through `psql`: databases and tables for each measurement, and the
//! hand-written baselines Sluice is compared with (`\copy` of the clean
//! file into a typed table; a staging `COPY` + `INSERT … ON CONFLICT` upsert).

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::infra::Res;
use crate::infra::pg::Postgres;

/// The typed table of the baselines: `age` is `int`. Sluice's upsert
/// prefill uses the same table with `age bigint`, the type Sluice gives an
/// `integer` column (it refuses an `int` column for it, since an `integer`
/// value may not fit in 32 bits); Sluice adds its lineage columns itself.
pub fn create_table(primary_key: bool, age_type: &str) -> String {
    format!(
        "CREATE TABLE customers (id bigint{}, email text, name text, age {age_type}, \
         signup_date date, score numeric)",
        if primary_key { " PRIMARY KEY" } else { "" }
    )
}

/// Untimed: the typed table with `PRIMARY KEY (id)` and `age_type`,
/// prefilled with half of the ids.
pub fn prefill(pg: &Postgres, db: &str, age_type: &str, file: &Path) -> Res<()> {
    sql(pg, db, &create_table(true, age_type))?;
    load(pg, db, "customers", file)?;
    sql(pg, db, "VACUUM ANALYZE customers").map(drop)
}

/// Runs `sql` (one statement or a script) on `db`; returns what it printed.
pub fn sql(pg: &Postgres, db: &str, sql: &str) -> Res<String> {
    let out = pg
        .psql(db)
        .args(["-tA", "-c", sql])
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// One number from a query.
pub fn count(pg: &Postgres, db: &str, query: &str) -> Res<u64> {
    let v = sql(pg, db, query)?;
    v.parse()
        .map_err(|_| format!("`{query}` returned `{v}`, not a count"))
}

/// Drops `db` if it exists and creates it empty.
pub fn fresh_database(pg: &Postgres, db: &str) -> Res<()> {
    drop_database(pg, db)?;
    sql(pg, "postgres", &format!("CREATE DATABASE {db}")).map(drop)
}

/// Drops `db` (closing its connections).
pub fn drop_database(pg: &Postgres, db: &str) -> Res<()> {
    sql(
        pg,
        "postgres",
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    )
    .map(drop)
}

/// A `\copy` meta-command reading `file` (CSV with a header) into `table`.
pub fn copy_command(table: &str, file: &Path) -> String {
    let path = file.display().to_string().replace('\'', "''");
    format!("\\copy {table} FROM '{path}' WITH (FORMAT csv, HEADER)")
}

/// Untimed: `\copy` of `file` into `table`.
pub fn load(pg: &Postgres, db: &str, table: &str, file: &Path) -> Res<()> {
    sql(pg, db, &copy_command(table, file)).map(drop)
}

/// Writes the dirty buffers out, so that no measurement pays for the one
/// before it.
pub fn checkpoint(pg: &Postgres, db: &str) -> Res<()> {
    sql(pg, db, "CHECKPOINT").map(drop)
}

/// Runs `script` with `psql` reading it from stdin; returns the wall time
/// from starting psql to its exit (connection set-up included: a few ms).
pub fn timed_script(pg: &Postgres, db: &str, script: &str) -> Res<Duration> {
    let start = Instant::now();
    let mut child = pg
        .psql(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("cannot feed psql: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "baseline script failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(elapsed)
}

/// The baseline scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// `\copy` of the clean file into the typed table, no index: the
    /// physical limit for getting these rows into PostgreSQL here.
    Copy,
    /// The same into the typed table with `PRIMARY KEY (id)`: what a keyed
    /// append has to do at least (maintain a unique index).
    CopyPk,
    /// Staging `COPY` + `INSERT … ON CONFLICT (id) DO UPDATE` in one
    /// transaction, into the typed table prefilled with half of the ids.
    Upsert,
}

impl Baseline {
    /// Its name in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Copy => "copy",
            Self::CopyPk => "copy_pk",
            Self::Upsert => "staging_upsert",
        }
    }

    /// What it is, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Copy => "psql \\copy of the clean file into the typed table (no index)",
            Self::CopyPk => {
                "psql \\copy of the clean file into the typed table with PRIMARY KEY (id)"
            }
            Self::Upsert => {
                "CREATE TEMP TABLE staging + \\copy + INSERT … ON CONFLICT (id) DO UPDATE, one transaction, table prefilled with 50% of the ids"
            }
        }
    }

    /// Untimed set-up in a fresh database.
    pub fn prepare(self, pg: &Postgres, db: &str, prefill_file: &Path) -> Res<()> {
        match self {
            Self::Copy => sql(pg, db, &create_table(false, "int")).map(drop),
            Self::CopyPk => sql(pg, db, &create_table(true, "int")).map(drop),
            Self::Upsert => prefill(pg, db, "int", prefill_file),
        }
    }

    /// The timed script.
    pub fn script(self, clean: &Path) -> String {
        match self {
            Self::Copy | Self::CopyPk => format!("{}\n", copy_command("customers", clean)),
            Self::Upsert => format!(
                "BEGIN;\n\
                 CREATE TEMP TABLE staging (LIKE customers) ON COMMIT DROP;\n\
                 {}\n\
                 INSERT INTO customers SELECT * FROM staging \
                 ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, \
                 age = EXCLUDED.age, signup_date = EXCLUDED.signup_date, score = EXCLUDED.score;\n\
                 COMMIT;\n",
                copy_command("staging", clean)
            ),
        }
    }
}
