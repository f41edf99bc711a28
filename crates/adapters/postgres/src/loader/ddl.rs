//! Destination tables: created from the pipeline schema when missing,
//! completed (missing columns, key index) when they exist, refused with a
//! message saying what to fix when they cannot take the rows.

use std::collections::HashMap;

use sluice_application::ports::{LoadTarget, StoreError};
use sluice_domain::identifier::Identifier;
use sluice_domain::pipeline::LoadStrategy;
use sluice_domain::schema::ColumnType;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Transaction};

use super::shadow_table;
use super::swap::{unsupported_message, unsupported_sql};
use crate::error::{DbError, DbResult};
pub(crate) use sluice_domain::ddl::qualified;
use sluice_domain::ddl::{create_table_statements, key_index_statement, pg_type};

/// Whether an existing column of type `existing` (as `regtype` prints it)
/// accepts every validated value of `t`.
fn accepts(existing: &str, t: ColumnType) -> bool {
    let text = ["text", "character varying", "character"];
    match t {
        ColumnType::String | ColumnType::Email => text.contains(&existing),
        ColumnType::Integer => ["bigint", "numeric"].contains(&existing),
        ColumnType::Number => ["numeric", "double precision"].contains(&existing),
        ColumnType::Boolean => existing == "boolean",
        ColumnType::Date => existing == "date",
        ColumnType::Timestamp => existing == "timestamp with time zone",
        ColumnType::Uuid => existing == "uuid" || text.contains(&existing),
        ColumnType::Json => ["jsonb", "json"].contains(&existing) || text.contains(&existing),
    }
}

async fn exists(tx: &Transaction<'_>, name: &str) -> DbResult<bool> {
    let row = tx
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await?;
    Ok(row.try_get(0)?)
}

/// An existing column: its type (as `regtype` prints it) and whether every
/// insert must give it a value (NOT NULL without default, identity or
/// generation).
struct ExistingColumn {
    type_name: String,
    needs_value: bool,
}

/// The columns of an existing table, by name.
async fn columns_of(tx: &Transaction<'_>, name: &str) -> DbResult<HashMap<String, ExistingColumn>> {
    let rows = tx
        .query(
            "SELECT a.attname::text, a.atttypid::regtype::text, \
                    a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' \
                        AND a.attgenerated = '' \
             FROM pg_attribute a \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
            &[&name],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<_, String>(0)?,
                ExistingColumn {
                    type_name: r.try_get(1)?,
                    needs_value: r.try_get(2)?,
                },
            ))
        })
        .collect()
}

/// True when a unique, non-partial index covers exactly the key columns (any
/// order): `ON CONFLICT (keys)` can use it.
async fn has_key_index(tx: &Transaction<'_>, name: &str, keys: &[Identifier]) -> DbResult<bool> {
    let mut sorted: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
    sorted.sort();
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_index i \
               WHERE i.indrelid = to_regclass($1) AND i.indisunique \
                 AND i.indpred IS NULL AND i.indexprs IS NULL \
                 AND i.indnatts = cardinality($2::text[]) \
                 AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text COLLATE \"C\") \
                      FROM pg_attribute a \
                      WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[])) \
                     = $2::text[])",
            &[&name, &sorted],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Brings an existing table (the destination, or a replace run's shadow
/// copied from it) up to what loading needs: missing schema and lineage
/// columns added (nullable, since rows may exist), types checked, the key
/// index created. Messages name the destination table.
async fn complete_existing(
    tx: &Transaction<'_>,
    warehouse: &Identifier,
    relation: &Identifier,
    target: &LoadTarget,
) -> DbResult<()> {
    let name = qualified(warehouse, relation);
    let table = target.table.as_str();
    let existing = columns_of(tx, &name).await?;
    for col in &target.schema.columns {
        match existing
            .get(col.name.as_str())
            .map(|c| c.type_name.as_str())
        {
            None => {
                tx.batch_execute(&format!(
                    "ALTER TABLE {name} ADD COLUMN {} {}",
                    col.name.quoted(),
                    pg_type(col.column_type)
                ))
                .await?;
            }
            Some(found) if !accepts(found, col.column_type) => {
                return Err(StoreError::Unprocessable(format!(
                    "column `{}` of table `{table}` has PostgreSQL type {found}, which cannot hold every \
                     value of the pipeline's `{}` column type (it needs {}): change the column's type \
                     or the pipeline schema",
                    col.name,
                    col.column_type.as_str(),
                    pg_type(col.column_type)
                ))
                .into());
            }
            Some(_) => {}
        }
    }
    let lineage = [
        ("_sluice_run_id", "text", &["text", "character varying"][..]),
        ("_sluice_row", "bigint", &["bigint", "numeric"][..]),
        (
            "_sluice_loaded_at",
            "timestamptz DEFAULT now()",
            &["timestamp with time zone"][..],
        ),
    ];
    for (column, create, ok) in lineage {
        match existing.get(column).map(|c| c.type_name.as_str()) {
            None => {
                tx.batch_execute(&format!(
                    "ALTER TABLE {name} ADD COLUMN \"{column}\" {create}"
                ))
                .await?;
            }
            Some(found) if !ok.contains(&found) => {
                return Err(StoreError::Unprocessable(format!(
                    "column `{column}` of table `{table}` has type {found}; Sluice needs it as \
                     {create} for lineage: rename or drop that column"
                ))
                .into());
            }
            Some(_) => {}
        }
    }
    let fed = |c: &str| {
        c.starts_with("_sluice_") || target.schema.columns.iter().any(|s| s.name.as_str() == c)
    };
    if let Some((column, _)) = existing.iter().find(|(c, e)| e.needs_value && !fed(c)) {
        return Err(StoreError::Unprocessable(format!(
            "column `{column}` of table `{table}` is NOT NULL without a default and is not in \
             the pipeline schema: add it to the schema, give it a default or make it nullable"
        ))
        .into());
    }
    if !target.key_columns.is_empty() && !has_key_index(tx, &name, &target.key_columns).await? {
        let sql = key_index_statement(warehouse, relation, &target.key_columns);
        if let Err(e) = tx.batch_execute(&sql).await {
            let e = DbError::from(e);
            if e.sql_state() == Some(&SqlState::UNIQUE_VIOLATION) {
                let keys: Vec<&str> = target.key_columns.iter().map(Identifier::as_str).collect();
                return Err(StoreError::Unprocessable(format!(
                    "table `{table}` has rows with the same key ({}): remove the duplicates or \
                     change the pipeline's key columns",
                    keys.join(", ")
                ))
                .into());
            }
            return Err(e);
        }
    }
    Ok(())
}

/// See [`sluice_application::ports::BulkLoader::prepare_destination`].
pub(crate) async fn prepare(
    client: &mut Client,
    warehouse: &Identifier,
    target: &LoadTarget,
) -> DbResult<()> {
    let tx = client.transaction().await?;
    // Partitions of a run prepare concurrently: one at a time per table, so
    // `CREATE … IF NOT EXISTS` never races with itself.
    let lock = format!("sluice.prepare:{}", qualified(warehouse, &target.table));
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock])
        .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        warehouse.quoted()
    ))
    .await?;
    let name = qualified(warehouse, &target.table);
    if !exists(&tx, &name).await? {
        for sql in create_table_statements(
            warehouse,
            &target.table,
            &target.schema,
            &target.key_columns,
        ) {
            tx.batch_execute(&sql).await?;
        }
    } else if target.strategy != LoadStrategy::Replace {
        complete_existing(&tx, warehouse, &target.table, target).await?;
    }
    if target.strategy == LoadStrategy::Replace {
        // The destination stays as it is until the swap, so readers see it;
        // the run loads into a copy of its shape.
        prepare_shadow(&tx, warehouse, target).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Creates a replace run's shadow table, once: the destination's columns
/// (in its order, with their types, defaults, identity and generated
/// expressions, NOT NULL and check constraints, comments and storage), the
/// pipeline's columns it lacks, the lineage columns and the key index.
/// Indexes and the rest are carried over at the swap. A pipeline column whose
/// existing type cannot hold the pipeline's values gets the pipeline's type,
/// as the new contents come from the pipeline alone. A table the swap could
/// not carry over is refused here, before anything is loaded.
async fn prepare_shadow(
    tx: &Transaction<'_>,
    warehouse: &Identifier,
    target: &LoadTarget,
) -> DbResult<()> {
    let shadow = shadow_table(target.run_id);
    let shadow_name = qualified(warehouse, &shadow);
    if exists(tx, &shadow_name).await? {
        return Ok(());
    }
    let name = qualified(warehouse, &target.table);
    if let Some(row) = tx.query_opt(&unsupported_sql(&name), &[]).await? {
        let reason: String = row.try_get(0)?;
        return Err(StoreError::Unprocessable(format!(
            "table `{}` cannot be replaced: {}",
            target.table,
            unsupported_message(&reason)
        ))
        .into());
    }
    let unlogged: bool = tx
        .query_one(
            "SELECT relpersistence = 'u' FROM pg_class WHERE oid = to_regclass($1)",
            &[&name],
        )
        .await?
        .try_get(0)?;
    tx.batch_execute(&format!(
        "CREATE {}TABLE {shadow_name} (LIKE {name} INCLUDING DEFAULTS INCLUDING GENERATED \
         INCLUDING IDENTITY INCLUDING CONSTRAINTS INCLUDING COMMENTS INCLUDING STORAGE \
         INCLUDING COMPRESSION)",
        if unlogged { "UNLOGGED " } else { "" }
    ))
    .await?;
    let existing = columns_of(tx, &shadow_name).await?;
    for col in &target.schema.columns {
        if let Some(found) = existing.get(col.name.as_str()) {
            if !accepts(&found.type_name, col.column_type) {
                let t = pg_type(col.column_type);
                tx.batch_execute(&format!(
                    "ALTER TABLE {shadow_name} ALTER COLUMN {c} DROP DEFAULT, \
                     ALTER COLUMN {c} TYPE {t} USING NULL::{t}",
                    c = col.name.quoted()
                ))
                .await?;
            }
        }
    }
    complete_existing(tx, warehouse, &shadow, target).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_accepts_what_it_creates() {
        let created = [
            (ColumnType::String, "text"),
            (ColumnType::Email, "text"),
            (ColumnType::Integer, "bigint"),
            (ColumnType::Number, "numeric"),
            (ColumnType::Boolean, "boolean"),
            (ColumnType::Date, "date"),
            (ColumnType::Timestamp, "timestamp with time zone"),
            (ColumnType::Uuid, "uuid"),
        ];
        for (t, regtype) in created {
            assert!(accepts(regtype, t), "{t:?}");
        }
        assert!(!accepts("integer", ColumnType::String));
        assert!(
            !accepts("integer", ColumnType::Integer),
            "int4 overflows on 64-bit values"
        );
    }
}
