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

pub(crate) use ddl::pg_type;
pub(crate) use swap::swap_shadow;

/// Lineage column: the run that wrote the row.
pub(crate) const RUN_COLUMN: &str = "\"_sluice_run_id\"";
/// Lineage column: the row's number in its run's source.
pub(crate) const ROW_COLUMN: &str = "\"_sluice_row\"";
/// Lineage column: when the row was written.
pub(crate) const LOADED_AT_COLUMN: &str = "\"_sluice_loaded_at\"";

/// The shadow table a `replace` run loads into, in the warehouse schema:
/// `_sluice_shadow_<run ULID in lower case>` (41 characters).
pub(crate) fn shadow_table(run: RunId) -> Identifier {
    let name = format!("_sluice_shadow_{}", run.ulid().to_string().to_lowercase());
    // ULID characters are ASCII letters and digits, so this always parses.
    Identifier::parse(&name).unwrap_or_else(|_| unreachable!("shadow names are valid identifiers"))
}

/// The name of the unique index Sluice creates on a table's key columns:
/// `<table>_sluice_key`, or for long names a prefix plus a hash, so that it
/// stays within PostgreSQL's 63-byte limit and distinct per table.
pub(crate) fn key_index(table: &Identifier) -> Identifier {
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

#[async_trait]
impl BulkLoader for PgStore {
    async fn prepare_destination(&self, target: &LoadTarget) -> Result<(), StoreError> {
        let mut client = self.loader.get().await.store("prepare destination")?;
        ddl::prepare(&mut client, &self.warehouse, target)
            .await
            .store("prepare destination")
    }

    async fn commit_batch(&self, commit: BatchCommit<'_>) -> Result<CommitOutcome, CommitError> {
        commit::commit(self, &commit).await
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
