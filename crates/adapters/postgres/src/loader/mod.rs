//! [`BulkLoader`]: destination tables in the warehouse schema and the atomic
//! batch commit (COPY on tokio-postgres, since diesel-async cannot COPY).

mod binary;
mod commit;
mod copy;
mod ddl;
mod files;
mod swap;

use async_trait::async_trait;
use sluice_application::ports::{
    BatchCommit, BulkLoader, CommitError, CommitOutcome, LoadTarget, StoreError,
};
use sluice_domain::identifier::Identifier;
use sluice_domain::ids::RunId;

use crate::error::IntoStore;
use crate::store::PgStore;

pub(crate) use sluice_domain::ddl::pg_type;
pub(crate) use swap::swap_shadow;

pub(crate) use sluice_domain::ddl::{LOADED_AT_COLUMN, ROW_COLUMN, RUN_COLUMN, key_index};

/// The shadow table a `replace` run loads into, in the warehouse schema:
/// `_sluice_shadow_<run ULID in lower case>` (41 characters).
pub(crate) fn shadow_table(run: RunId) -> Identifier {
    let name = format!("_sluice_shadow_{}", run.ulid().to_string().to_lowercase());
    // ULID characters are ASCII letters and digits, so this always parses.
    Identifier::parse(&name).unwrap_or_else(|_| unreachable!("shadow names are valid identifiers"))
}

#[async_trait]
impl BulkLoader for PgStore {
    async fn prepare_destination(&self, target: &LoadTarget) -> Result<(), StoreError> {
        let mut client = self.loader.get().await.store("prepare destination")?;
        ddl::prepare(&mut client, &self.warehouse, target)
            .await
            .map_err(|e| e.into_destination("prepare destination"))
    }

    async fn commit_batch(&self, commit: BatchCommit<'_>) -> Result<CommitOutcome, CommitError> {
        commit::commit(self, &commit).await
    }

    fn create_table_sql(
        &self,
        table: &Identifier,
        schema: &sluice_domain::schema::Schema,
        keys: &[Identifier],
    ) -> Vec<String> {
        sluice_domain::ddl::create_table_statements(&self.warehouse, table, schema, keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_domain::ids::Ulid;

    #[test]
    fn shadow_names_are_lower_case_identifiers() {
        let run = RunId::from_ulid(Ulid::from_parts(1_750_000_000_000, 42));
        let name = shadow_table(run);
        assert!(name.as_str().starts_with("_sluice_shadow_"));
        assert_eq!(name.as_str().len(), 41);
    }
}
