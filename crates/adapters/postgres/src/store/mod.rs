//! [`PgStore`] and the metadata ports it implements, one file per port.

mod api_keys;
mod connectors;
pub(crate) mod ledger;
mod page;
mod pipelines;
mod polling;
pub(crate) mod runs;
mod stop;
pub(crate) mod webhooks;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::Object;
use sluice_application::ports::StoreError;
use sluice_domain::identifier::Identifier;

use crate::config::PgConfig;
use crate::error::DbResult;
use crate::pool::{self, LoaderPool, MetaPool};

pub(crate) use stop::stop_run;

/// Every storage port of Sluice on PostgreSQL. Cheap to clone (the pools
/// are shared).
#[derive(Clone)]
pub struct PgStore {
    pub(crate) meta: MetaPool,
    pub(crate) loader: LoaderPool,
    pub(crate) warehouse: Identifier,
    pub(crate) failpoint: std::sync::Arc<crate::failpoint::FailpointState>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("warehouse", &self.warehouse)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Builds the pools and checks that the database answers. Run
    /// [`crate::migrate`] first: the store expects the schema in place.
    pub async fn connect(config: &PgConfig) -> Result<Self, StoreError> {
        let (meta, loader) = pool::build(config)?;
        let store = Self {
            meta,
            loader,
            warehouse: config.warehouse_schema.clone(),
            failpoint: std::sync::Arc::new(crate::failpoint::FailpointState::new(config.failpoint)),
        };
        sluice_application::ports::RunStore::ping(&store).await?;
        Ok(store)
    }

    /// The warehouse schema, quoted.
    pub(crate) fn warehouse(&self) -> String {
        self.warehouse.quoted()
    }

    /// A pooled metadata connection.
    pub(crate) async fn conn(&self) -> DbResult<Object<AsyncPgConnection>> {
        Ok(self.meta.get().await?)
    }
}
