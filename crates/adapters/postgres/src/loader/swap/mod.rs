//! The `replace` swap: the run's shadow table takes the destination's place
//! inside the transaction that completes the run, so readers see the old
//! contents until that commit and only the new ones after, and whatever
//! users attached to the destination stays attached (decision 0015).
//!
//! The shadow was created `LIKE` the destination (columns, defaults, checks,
//! comments) when the run started. Here, in order:
//! 1. the shadow gets what costs time to build, before the destination is
//!    locked, so readers keep reading meanwhile: columns added since, the
//!    destination's indexes and key, unique, exclusion and foreign-key
//!    constraints (under temporary names);
//! 2. the views on the destination, then the destination itself, are locked
//!    (the order readers of a view take them in; waiting at most
//!    [`LOCK_TIMEOUT`]) and step 1 repeated for anything changed in between;
//! 3. the rest is read from the catalog as statements written against the
//!    destination's name: views, grants, owner, comments, row-level security
//!    and policies, triggers, rules, sequences, publications, statistics,
//!    foreign keys pointing at the table;
//! 4. the destination is renamed away, the shadow takes its name, dependent
//!    views are redefined in place (`CREATE OR REPLACE VIEW`, which keeps
//!    their grants, comments and the views built on them), the old table is
//!    dropped without `CASCADE` (so anything still depending on it refuses
//!    the swap instead of being dropped), indexes and constraints get their
//!    names back, and the statements of step 3 run.
//!
//! A table the swap cannot carry over (a materialized view reads it, it is
//! partitioned, …) refuses with [`DbError::SwapRefused`] and a reason in
//! plain words; the caller then fails the run, leaving the old table as it was.

mod catalog;

use std::collections::HashSet;

use diesel::QueryableByName;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sluice_domain::identifier::Identifier;
use sluice_domain::ids::RunId;

pub(crate) use catalog::unsupported_sql;

use self::catalog::{ConstraintRow, IndexRow, lines};
use super::ddl::qualified;
use super::{key_index, shadow_table};
use crate::error::{DbError, DbResult};

/// How long the swap waits for readers and writers of the destination to
/// let go of it; after that the run stays `running` and the swap is tried
/// again at the next finalisation pass, instead of queueing every new reader
/// of the table behind a waiting `ALTER TABLE`.
const LOCK_TIMEOUT: &str = "5s";

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    found: bool,
}

async fn table_exists(conn: &mut AsyncPgConnection, name: &str) -> DbResult<bool> {
    let row: Exists = diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS found")
        .bind::<Text, _>(name)
        .get_result(conn)
        .await?;
    Ok(row.found)
}

async fn execute(conn: &mut AsyncPgConnection, sql: &str) -> DbResult<()> {
    diesel::sql_query(sql).execute(conn).await?;
    Ok(())
}

/// Replaces `table` by the shadow table of `run`, keeping what is attached
/// to it. Without a shadow (the run loaded nothing) the destination is
/// emptied instead. Runs in the caller's transaction; `SwapRefused` when
/// the table cannot be swapped (the transaction must then be rolled back).
pub(crate) async fn swap_shadow(
    conn: &mut AsyncPgConnection,
    warehouse: &Identifier,
    run: RunId,
    table: &Identifier,
) -> DbResult<()> {
    let shadow = shadow_table(run);
    let mut swap = Swap {
        table: table.clone(),
        table_name: qualified(warehouse, table),
        shadow_name: qualified(warehouse, &shadow),
        shadow,
        warehouse: warehouse.clone(),
        temp_prefix: format!("_sluice_{}_", run.ulid().to_string().to_lowercase()),
        made: 0,
    };
    let shadow_exists = table_exists(conn, &swap.shadow_name).await?;
    let table_exists = table_exists(conn, &swap.table_name).await?;
    let result = match (shadow_exists, table_exists) {
        (false, true) => execute(conn, &format!("TRUNCATE {}", swap.table_name)).await,
        (false, false) => Ok(()),
        // The destination was dropped during the run: nothing to keep.
        (true, false) => swap.rename_only(conn).await,
        (true, true) => swap.run(conn).await,
    };
    result.map_err(|e| swap.refusal(e))
}

/// Everything one swap needs to know.
struct Swap {
    table: Identifier,
    table_name: String,
    shadow: Identifier,
    shadow_name: String,
    warehouse: Identifier,
    /// Prefix of the temporary names of indexes and constraints built on
    /// the shadow (unique per run).
    temp_prefix: String,
    /// Temporary names handed out so far.
    made: u32,
}

/// An index or constraint of the shadow that must take the name of the
/// destination's after the swap.
struct Rename {
    /// `true` for a constraint (renamed through the table), else an index.
    constraint: bool,
    from: String,
    to: String,
}

impl Swap {
    fn temp_name(&mut self) -> String {
        self.made += 1;
        format!("{}{}", self.temp_prefix, self.made)
    }

    /// An error of a statement of the swap, as the caller must treat it:
    /// transient ones (lock timeout, deadlock, lost connection) stay as they
    /// are, so finalisation is simply tried again; anything else refuses the
    /// swap with PostgreSQL's reason, naming the destination table.
    fn refusal(&self, e: DbError) -> DbError {
        let DbError::Diesel(DieselError::DatabaseError(kind, info)) = &e else {
            return e;
        };
        let message = info.message();
        let transient = matches!(
            kind,
            DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ClosedConnection
        ) || message.contains("deadlock detected")
            || message.contains("lock timeout")
            || message.contains("statement timeout");
        if transient {
            return e;
        }
        let mut reason = message.to_owned();
        if let Some(detail) = info.details() {
            if message.contains("depend on it") {
                reason = format!("{reason} ({})", detail.replace('\n', "; "));
            }
        }
        let reason = reason
            .replace(&self.shadow.to_string(), self.table.as_str())
            .replace(&format!("{}old", self.temp_prefix), self.table.as_str());
        tracing::warn!(table = %self.table, error = %reason, "replace swap refused");
        self.refused(&reason)
    }

    fn refused(&self, reason: &str) -> DbError {
        DbError::SwapRefused(format!(
            "the new contents could not take the place of table `{}`: {reason}",
            self.table
        ))
    }

    /// The shadow takes the destination's name, and its key index the key
    /// index's name.
    async fn rename_only(&self, conn: &mut AsyncPgConnection) -> DbResult<()> {
        self.shadow_takes_the_name(conn).await?;
        execute(
            conn,
            &format!(
                "ALTER INDEX IF EXISTS {} RENAME TO {}",
                qualified(&self.warehouse, &key_index(&self.shadow)),
                key_index(&self.table).quoted()
            ),
        )
        .await
    }

    async fn run(&mut self, conn: &mut AsyncPgConnection) -> DbResult<()> {
        self.check_supported(conn).await?;
        self.complete_shadow(conn).await?;
        execute(conn, &format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")).await?;
        // Views first, then the table: the order a reader of a view takes
        // them in, so that redefining a view cannot deadlock with one.
        // Once the table is locked no view on it can be created, so the
        // second listing only finds views created while the first was taken.
        let mut locked: Vec<String> = Vec::new();
        let mut first = true;
        loop {
            let pending: Vec<String> = catalog::dependent_views(conn, &self.table_name)
                .await?
                .into_iter()
                .map(|v| v.name)
                .filter(|v| !locked.contains(v))
                .collect();
            if !first && pending.is_empty() {
                break;
            }
            let mut names = pending.clone();
            if first {
                names.push(self.table_name.clone());
            }
            execute(
                conn,
                &format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", names.join(", ")),
            )
            .await?;
            locked.extend(pending);
            first = false;
        }
        // From here on nobody else changes the destination: repeat the
        // checks and the building for what changed since.
        self.check_supported(conn).await?;
        let renames = self.complete_shadow(conn).await?;

        let views = catalog::dependent_views(conn, &self.table_name).await?;
        let references = catalog::references(conn, &self.table_name).await?;
        let sequences = lines(
            conn,
            &catalog::sequences_sql(&self.table_name, &self.shadow_name),
        )
        .await?;
        let attachments = lines(
            conn,
            &catalog::attachments_sql(&self.table_name, &self.shadow_name),
        )
        .await?;

        let old = Identifier::parse(&format!("{}old", self.temp_prefix))
            .map_err(|e| DbError::SwapRefused(e.to_string()))?;
        execute(
            conn,
            &format!("ALTER TABLE {} RENAME TO {}", self.table_name, old.quoted()),
        )
        .await?;
        self.shadow_takes_the_name(conn).await?;
        for sql in &sequences {
            execute(conn, sql).await?;
        }
        for r in references.iter().filter(|r| !r.from_itself) {
            execute(conn, &r.drop).await?;
        }
        for v in &views {
            let options = v
                .options
                .as_deref()
                .map(|o| format!(" WITH ({o})"))
                .unwrap_or_default();
            execute(
                conn,
                &format!("CREATE OR REPLACE VIEW {}{options} AS {}", v.name, v.def),
            )
            .await?;
        }
        execute(
            conn,
            &format!("DROP TABLE {}", qualified(&self.warehouse, &old)),
        )
        .await?;
        for r in &renames {
            let sql = if r.constraint {
                format!(
                    "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                    self.table_name,
                    quote(&r.from),
                    quote(&r.to)
                )
            } else {
                format!(
                    "ALTER INDEX {}.{} RENAME TO {}",
                    self.warehouse.quoted(),
                    quote(&r.from),
                    quote(&r.to)
                )
            };
            execute(conn, &sql).await?;
        }
        for sql in &attachments {
            execute(conn, sql).await?;
        }
        for r in &references {
            execute(conn, &r.add).await?;
        }
        Ok(())
    }

    async fn shadow_takes_the_name(&self, conn: &mut AsyncPgConnection) -> DbResult<()> {
        execute(
            conn,
            &format!(
                "ALTER TABLE {} RENAME TO {}",
                self.shadow_name,
                self.table.quoted()
            ),
        )
        .await
    }

    async fn check_supported(&self, conn: &mut AsyncPgConnection) -> DbResult<()> {
        match lines(conn, &unsupported_sql(&self.table_name))
            .await?
            .into_iter()
            .next()
        {
            Some(reason) => Err(self.refused(&unsupported_message(&reason))),
            None => Ok(()),
        }
    }

    /// Gives the shadow the destination's columns, constraints and indexes
    /// that it lacks (built under temporary names), and drops the ones it
    /// built for indexes or checks the destination no longer has. Returns
    /// the names to give back after the swap.
    async fn complete_shadow(&mut self, conn: &mut AsyncPgConnection) -> DbResult<Vec<Rename>> {
        for sql in lines(
            conn,
            &catalog::missing_columns_sql(&self.table_name, &self.shadow_name),
        )
        .await?
        {
            execute(conn, &sql).await?;
        }
        let mut renames = Vec::new();

        let wanted = catalog::constraints(conn, &self.table_name).await?;
        let mut have = catalog::constraints(conn, &self.shadow_name).await?;
        for c in &wanted {
            if c.kind == "c" {
                // Checks keep their names (`LIKE` copied them so).
                match have.iter().position(|h| h.name == c.name) {
                    Some(i) if have[i].def == c.def => {
                        have.remove(i);
                    }
                    found => {
                        if let Some(i) = found {
                            self.drop_constraint(conn, &have.remove(i)).await?;
                        }
                        self.add_constraint(conn, &c.name, &c.def).await?;
                    }
                }
                continue;
            }
            let from = match have.iter().position(|h| h.kind == c.kind && h.def == c.def) {
                Some(i) => have.remove(i).name,
                None => {
                    let name = self.temp_name();
                    self.add_constraint(conn, &name, &c.def).await?;
                    name
                }
            };
            renames.push(Rename {
                constraint: true,
                from,
                to: c.name.clone(),
            });
        }
        for stale in &have {
            self.drop_constraint(conn, stale).await?;
        }

        // Sluice's own key index is not carried over: the shadow has the
        // one for the pipeline's current key columns.
        let own_key = key_index(&self.table);
        let shadow_key = key_index(&self.shadow);
        let wanted: Vec<IndexRow> = catalog::indexes(conn, &self.table_name)
            .await?
            .into_iter()
            .filter(|i| i.name != own_key.as_str())
            .collect();
        let mut have: Vec<IndexRow> = catalog::indexes(conn, &self.shadow_name)
            .await?
            .into_iter()
            .filter(|i| i.name != shadow_key.as_str())
            .collect();
        for index in &wanted {
            let Some(body) = &index.body else {
                return Err(self.refused(&format!(
                    "the definition of index `{}` could not be read",
                    index.name
                )));
            };
            let from = match have
                .iter()
                .position(|h| h.unique == index.unique && h.body.as_ref() == Some(body))
            {
                Some(i) => have.remove(i).name,
                None => {
                    let name = self.temp_name();
                    let unique = if index.unique { "UNIQUE " } else { "" };
                    execute(
                        conn,
                        &format!(
                            "CREATE {unique}INDEX {} ON {} {body}",
                            quote(&name),
                            self.shadow_name
                        ),
                    )
                    .await?;
                    name
                }
            };
            renames.push(Rename {
                constraint: false,
                from,
                to: index.name.clone(),
            });
        }
        for stale in have
            .iter()
            .filter(|h| h.name.starts_with(&self.temp_prefix))
        {
            execute(
                conn,
                &format!(
                    "DROP INDEX {}.{}",
                    self.warehouse.quoted(),
                    quote(&stale.name)
                ),
            )
            .await?;
        }
        if renames.iter().all(|r| r.from != shadow_key.as_str()) {
            renames.push(Rename {
                constraint: false,
                from: shadow_key.as_str().to_owned(),
                to: own_key.as_str().to_owned(),
            });
        }
        // A key index exists only when the pipeline has key columns.
        let mut present = HashSet::new();
        for i in catalog::indexes(conn, &self.shadow_name).await? {
            present.insert(i.name);
        }
        for c in catalog::constraints(conn, &self.shadow_name).await? {
            present.insert(c.name);
        }
        renames.retain(|r| present.contains(&r.from));
        Ok(renames)
    }

    async fn add_constraint(
        &self,
        conn: &mut AsyncPgConnection,
        name: &str,
        def: &str,
    ) -> DbResult<()> {
        execute(
            conn,
            &format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {def}",
                self.shadow_name,
                quote(name)
            ),
        )
        .await
    }

    async fn drop_constraint(
        &self,
        conn: &mut AsyncPgConnection,
        c: &ConstraintRow,
    ) -> DbResult<()> {
        execute(
            conn,
            &format!(
                "ALTER TABLE {} DROP CONSTRAINT {}",
                self.shadow_name,
                quote(&c.name)
            ),
        )
        .await
    }
}

/// What a run says about a table [`unsupported_sql`] refuses.
pub(crate) fn unsupported_message(reason: &str) -> String {
    format!(
        "{reason}, which a replace run cannot carry over (load it with upsert, or drop what \
         stands in the way)"
    )
}

/// Quotes a name read from the catalog (any characters) as an identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
