//! [`ConnectorStore`] in memory.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sluice_domain::connector::{Connector, Credentials};
use sluice_domain::ids::ConnectorId;

use super::{InMemoryStore, page_of};
use crate::ports::{ConnectorStore, Page, PageRequest, StoreError};

#[async_trait]
impl ConnectorStore for InMemoryStore {
    async fn insert_connector(
        &self,
        connector: &Connector,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if s.connectors.contains_key(&connector.id) {
            return Err(StoreError::Conflict(format!(
                "connector {} already exists",
                connector.id
            )));
        }
        s.connectors
            .insert(connector.id, (connector.clone(), credentials.clone()));
        Ok(())
    }

    async fn get_connector(&self, id: ConnectorId) -> Result<Connector, StoreError> {
        let s = self.lock()?;
        s.connectors
            .get(&id)
            .map(|(c, _)| c.clone())
            .ok_or_else(|| StoreError::not_found("connector", id))
    }

    async fn connector_credentials(&self, id: ConnectorId) -> Result<Credentials, StoreError> {
        let s = self.lock()?;
        s.connectors
            .get(&id)
            .map(|(_, c)| c.clone())
            .ok_or_else(|| StoreError::not_found("connector", id))
    }

    async fn list_connectors(&self, page: &PageRequest) -> Result<Page<Connector>, StoreError> {
        let s = self.lock()?;
        let all: BTreeMap<ConnectorId, Connector> = s
            .connectors
            .iter()
            .map(|(id, (c, _))| (*id, c.clone()))
            .collect();
        Ok(page_of(&all, page, |_| true))
    }

    async fn update_connector(
        &self,
        connector: &Connector,
        credentials: Option<&Credentials>,
    ) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        let entry = s
            .connectors
            .get_mut(&connector.id)
            .ok_or_else(|| StoreError::not_found("connector", connector.id))?;
        entry.0 = connector.clone();
        if let Some(c) = credentials {
            entry.1 = c.clone();
        }
        Ok(())
    }

    async fn delete_connector(&self, id: ConnectorId) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        if !s.connectors.contains_key(&id) {
            return Err(StoreError::not_found("connector", id));
        }
        if s.pipelines.values().any(|p| p.spec.connector_id == id) {
            return Err(StoreError::Conflict(format!(
                "connector {id} is used by a pipeline"
            )));
        }
        s.connectors.remove(&id);
        Ok(())
    }
}
