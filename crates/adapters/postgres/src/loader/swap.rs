//! The `replace` swap: the run's shadow table becomes the destination inside
//! the transaction that completes the run, so readers see the old contents
//! until that commit and only the new ones after.

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sluice_domain::identifier::Identifier;
use sluice_domain::ids::RunId;

use super::ddl::qualified;
use super::{key_index, shadow_table};
use crate::error::DbResult;

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

/// Replaces `table` by the shadow table of `run` (drop, rename, rename the
/// key index). Without a shadow (the run loaded nothing) the destination is
/// emptied instead. Runs in the caller's transaction.
pub(crate) async fn swap_shadow(
    conn: &mut AsyncPgConnection,
    warehouse: &Identifier,
    run: RunId,
    table: &Identifier,
) -> DbResult<()> {
    let shadow = shadow_table(run);
    let shadow_name = qualified(warehouse, &shadow);
    let table_name = qualified(warehouse, table);
    let statements = if table_exists(conn, &shadow_name).await? {
        vec![
            format!("DROP TABLE IF EXISTS {table_name}"),
            format!("ALTER TABLE {shadow_name} RENAME TO {}", table.quoted()),
            format!(
                "ALTER INDEX IF EXISTS {} RENAME TO {}",
                qualified(warehouse, &key_index(&shadow)),
                key_index(table).quoted()
            ),
        ]
    } else if table_exists(conn, &table_name).await? {
        vec![format!("TRUNCATE {table_name}")]
    } else {
        vec![]
    };
    for sql in statements {
        diesel::sql_query(sql).execute(conn).await?;
    }
    Ok(())
}
