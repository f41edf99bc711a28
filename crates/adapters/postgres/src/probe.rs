//! [`DestinationProbe`] for the contract suite: reads a destination table
//! back as text (feature `testing` only).

use async_trait::async_trait;
use sluice_application::testing::{DestinationProbe, ProbedRow};
use sluice_domain::identifier::Identifier;

use crate::rows::uint8;
use crate::store::PgStore;

impl PgStore {
    async fn probe(&self, table: &str) -> Result<Option<Vec<ProbedRow>>, crate::error::DbError> {
        let Ok(table) = Identifier::parse(table) else {
            return Ok(None);
        };
        let name = format!("{}.{}", self.warehouse.quoted(), table.quoted());
        let client = self.loader.get().await?;
        let columns: Vec<String> = client
            .query(
                "SELECT a.attname::text FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
                   AND a.attname NOT LIKE '\\_sluice\\_%' \
                 ORDER BY a.attnum",
                &[&name],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if columns.is_empty() {
            return Ok(None);
        }
        let select: Vec<String> = columns
            .iter()
            .filter_map(|c| Identifier::parse(c).ok())
            .map(|c| format!("{}::text", c.quoted()))
            .collect();
        let rows = client
            .query(
                &format!(
                    "SELECT {}, \"_sluice_run_id\", \"_sluice_row\" FROM {name}",
                    select.join(", ")
                ),
                &[],
            )
            .await?;
        let width = select.len();
        let mut out: Vec<ProbedRow> = rows
            .iter()
            .map(|r| ProbedRow {
                values: (0..width).map(|i| r.get::<_, Option<String>>(i)).collect(),
                run_id: r.get::<_, Option<String>>(width).unwrap_or_default(),
                row: uint8(r.get::<_, Option<i64>>(width + 1).unwrap_or(0)),
            })
            .collect();
        out.sort();
        Ok(Some(out))
    }
}

#[async_trait]
impl DestinationProbe for PgStore {
    async fn create_table_with_primary_key(&self, table: &str) {
        let Ok(table) = Identifier::parse(table) else {
            return;
        };
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS {0}; CREATE TABLE {0}.{1} (id bigint PRIMARY KEY, name text)",
            self.warehouse.quoted(),
            table.quoted()
        );
        let created = async {
            self.loader
                .get()
                .await?
                .batch_execute(&sql)
                .await
                .map_err(crate::error::DbError::from)
        };
        if let Err(e) = created.await {
            tracing::warn!(error = ?e, "probe could not create a table");
        }
    }

    async fn table_rows(&self, table: &str) -> Option<Vec<ProbedRow>> {
        match self.probe(table).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = ?e, "probe failed");
                None
            }
        }
    }
}
