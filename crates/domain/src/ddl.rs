//! The text of the SQL statements that create a destination table, shared by
//! the PostgreSQL adapter (which runs them) and inference (which shows them).

use crate::identifier::Identifier;
use crate::schema::{ColumnType, Schema};

/// Lineage column: the run that wrote the row.
pub const RUN_COLUMN: &str = "\"_sluice_run_id\"";
/// Lineage column: the row's number in its run's source.
pub const ROW_COLUMN: &str = "\"_sluice_row\"";
/// Lineage column: when the row was written.
pub const LOADED_AT_COLUMN: &str = "\"_sluice_loaded_at\"";
/// Under `schemaDrift: rescue`, the `jsonb` column holding, per row, the
/// fields of the file that no schema column reads (unquoted: it is a schema
/// column of the load, see [`crate::pipeline::PipelineSpec::load_schema`]).
pub const RESCUED_COLUMN: &str = "_sluice_rescued";

/// The PostgreSQL type a column of `t` is created with.
pub fn pg_type(t: ColumnType) -> &'static str {
    match t {
        ColumnType::String | ColumnType::Email => "text",
        ColumnType::Integer => "bigint",
        ColumnType::Number => "numeric",
        ColumnType::Boolean => "boolean",
        ColumnType::Date => "date",
        ColumnType::Timestamp => "timestamptz",
        ColumnType::Uuid => "uuid",
        ColumnType::Json => "jsonb",
    }
}

/// `"schema"."table"`.
pub fn qualified(warehouse: &Identifier, table: &Identifier) -> String {
    format!("{}.{}", warehouse.quoted(), table.quoted())
}

/// The name of the unique index Sluice creates on a table's key columns:
/// `<table>_sluice_key`, or for long names a prefix plus a hash, so that it
/// stays within PostgreSQL's 63-byte limit and distinct per table.
pub fn key_index(table: &Identifier) -> Identifier {
    let name = table.as_str();
    let plain = format!("{name}_sluice_key");
    let chosen = if plain.len() <= 63 {
        plain
    } else {
        // FNV-1a: stable across builds, unlike std's hasher.
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{}_{hash:016x}_sluice_key", name.get(..34).unwrap_or(name))
    };
    Identifier::parse(&chosen).unwrap_or_else(|_| unreachable!("index names are valid identifiers"))
}

/// A unique index over the key columns. NULLS NOT DISTINCT (PostgreSQL 15+)
/// makes a NULL key one key, as `DISTINCT ON` and the in-memory store treat it.
pub fn key_index_statement(
    warehouse: &Identifier,
    table: &Identifier,
    keys: &[Identifier],
) -> String {
    format!(
        "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({}) NULLS NOT DISTINCT",
        key_index(table).quoted(),
        qualified(warehouse, table),
        keys.iter()
            .map(Identifier::quoted)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `CREATE TABLE` (and key index) statements for a table shaped by `schema`,
/// as a run creates a missing destination table: typed nullable columns in
/// schema order, then the lineage columns.
///
/// ```
/// use sluice_domain::ddl::create_table_statements;
/// use sluice_domain::identifier::Identifier;
/// use sluice_domain::schema::Schema;
///
/// let schema: Schema = serde_json::from_str(
///     r#"{"columns": [{"name": "id", "type": "integer"}, {"name": "order", "type": "date"}]}"#,
/// )
/// .expect("a schema");
/// let id = |s| Identifier::parse(s).expect("an identifier");
/// let sql = create_table_statements(&id("warehouse"), &id("orders"), &schema, &[id("id")]);
/// assert_eq!(
///     sql[0],
///     "CREATE TABLE IF NOT EXISTS \"warehouse\".\"orders\" (\"id\" bigint, \"order\" date, \
///      \"_sluice_run_id\" text NOT NULL, \"_sluice_row\" bigint NOT NULL, \
///      \"_sluice_loaded_at\" timestamptz NOT NULL DEFAULT now())"
/// );
/// assert!(sql[1].starts_with("CREATE UNIQUE INDEX IF NOT EXISTS \"orders_sluice_key\""));
/// ```
pub fn create_table_statements(
    warehouse: &Identifier,
    table: &Identifier,
    schema: &Schema,
    keys: &[Identifier],
) -> Vec<String> {
    let mut columns: Vec<String> = schema
        .columns
        .iter()
        .map(|c| format!("{} {}", c.name.quoted(), pg_type(c.column_type)))
        .collect();
    columns.push(format!("{RUN_COLUMN} text NOT NULL"));
    columns.push(format!("{ROW_COLUMN} bigint NOT NULL"));
    columns.push(format!(
        "{LOADED_AT_COLUMN} timestamptz NOT NULL DEFAULT now()"
    ));
    let mut out = vec![format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        qualified(warehouse, table),
        columns.join(", ")
    )];
    if !keys.is_empty() {
        out.push(key_index_statement(warehouse, table, keys));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_index_names_fit_and_differ() {
        let short = Identifier::parse("customers").expect("id");
        assert_eq!(key_index(&short).as_str(), "customers_sluice_key");
        let a = Identifier::parse(&format!("{}a", "x".repeat(62))).expect("id");
        let b = Identifier::parse(&format!("{}b", "x".repeat(62))).expect("id");
        assert!(key_index(&a).as_str().len() <= 63);
        assert_ne!(key_index(&a), key_index(&b));
    }
}
