//! [`ConnectorStore`]: credentials live in their own table, read by
//! `connector_credentials` alone.

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sluice_application::ports::{ConnectorStore, Page, PageRequest, StoreError};
use sluice_domain::connector::{Connector, Credentials};
use sluice_domain::ids::ConnectorId;

use super::{PgStore, page};
use crate::error::{DbError, DbResult, IntoStore};
use crate::rows::{ConnectorRow, from_json, to_json};
use crate::schema::connector_secrets::dsl as sec;
use crate::schema::connectors::dsl as c;

async fn put_secrets(
    conn: &mut AsyncPgConnection,
    id: &str,
    credentials: &Credentials,
) -> DbResult<()> {
    let value = to_json(&credentials.to_map(), "credentials")?;
    diesel::insert_into(sec::connector_secrets)
        .values((sec::connector_id.eq(id), sec::credentials.eq(&value)))
        .on_conflict(sec::connector_id)
        .do_update()
        .set(sec::credentials.eq(&value))
        .execute(conn)
        .await?;
    Ok(())
}

#[async_trait]
impl ConnectorStore for PgStore {
    async fn insert_connector(
        &self,
        connector: &Connector,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        let row = ConnectorRow::from_connector(connector)?;
        let mut conn = self.conn().await.store("insert connector")?;
        conn.transaction::<_, DbError, _>(async |conn| {
            diesel::insert_into(c::connectors)
                .values(&row)
                .execute(conn)
                .await?;
            put_secrets(conn, &row.id, credentials).await
        })
        .await
        .map_err(|e| match e.into_store("insert connector") {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("connector {} already exists", connector.id))
            }
            other => other,
        })
    }

    async fn get_connector(&self, id: ConnectorId) -> Result<Connector, StoreError> {
        let mut conn = self.conn().await.store("get connector")?;
        c::connectors
            .find(id.to_string())
            .select(ConnectorRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .store("get connector")?
            .ok_or_else(|| StoreError::not_found("connector", id))?
            .into_connector()
    }

    async fn connector_credentials(&self, id: ConnectorId) -> Result<Credentials, StoreError> {
        let mut conn = self.conn().await.store("read credentials")?;
        let value: serde_json::Value = sec::connector_secrets
            .find(id.to_string())
            .select(sec::credentials)
            .first(&mut conn)
            .await
            .optional()
            .store("read credentials")?
            .ok_or_else(|| StoreError::not_found("connector", id))?;
        let map: BTreeMap<String, String> = from_json(value, "credentials")?;
        Credentials::from_map(map)
            .map_err(|e| StoreError::Internal(format!("stored credentials do not parse: {e}")))
    }

    async fn list_connectors(&self, req: &PageRequest) -> Result<Page<Connector>, StoreError> {
        let mut conn = self.conn().await.store("list connectors")?;
        let mut q = c::connectors
            .select(ConnectorRow::as_select())
            .order(c::id.desc())
            .limit(page::fetch(req))
            .into_boxed();
        if let Some(after) = page::after::<ConnectorId>(req) {
            q = q.filter(c::id.lt(after));
        }
        let rows = q.load(&mut conn).await.store("list connectors")?;
        let items = rows
            .into_iter()
            .map(ConnectorRow::into_connector)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page::cut(items, req, |x| x.id.to_string()))
    }

    async fn update_connector(
        &self,
        connector: &Connector,
        credentials: Option<&Credentials>,
    ) -> Result<(), StoreError> {
        let row = ConnectorRow::from_connector(connector)?;
        let mut conn = self.conn().await.store("update connector")?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let updated = diesel::update(c::connectors.find(&row.id))
                .set(&row)
                .execute(conn)
                .await?;
            if updated == 0 {
                return Err(StoreError::not_found("connector", connector.id).into());
            }
            if let Some(creds) = credentials {
                put_secrets(conn, &row.id, creds).await?;
            }
            Ok(())
        })
        .await
        .store("update connector")
    }

    async fn delete_connector(&self, id: ConnectorId) -> Result<(), StoreError> {
        let mut conn = self.conn().await.store("delete connector")?;
        match diesel::delete(c::connectors.find(id.to_string()))
            .execute(&mut conn)
            .await
        {
            Ok(0) => Err(StoreError::not_found("connector", id)),
            Ok(_) => Ok(()),
            Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => Err(
                StoreError::Conflict(format!("connector {id} is used by a pipeline")),
            ),
            Err(e) => Err(DbError::from(e).into_store("delete connector")),
        }
    }
}
