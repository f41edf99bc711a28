//! The two connection pools: diesel-async connections for metadata and
//! plain tokio-postgres clients for COPY transactions (diesel-async cannot
//! COPY). Both are deadpool pools with the same connection settings.

use deadpool::Runtime;
use deadpool::managed::{Manager, Metrics, RecycleError, RecycleResult};
use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use futures::FutureExt;
use sluice_application::ports::StoreError;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

use crate::config::PgConfig;
use crate::tls::RustlsTls;

/// Pool of diesel-async connections (metadata, queue).
pub(crate) type MetaPool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;

/// Pool of tokio-postgres clients (batch commits with COPY).
pub(crate) type LoaderPool = deadpool::managed::Pool<LoaderConnections>;

/// Creates and checks the loader pool's clients.
#[derive(Debug)]
pub(crate) struct LoaderConnections {
    config: tokio_postgres::Config,
    tls: Option<RustlsTls>,
}

impl Manager for LoaderConnections {
    type Type = Client;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<Client, tokio_postgres::Error> {
        open(&self.config, self.tls.as_ref()).await
    }

    async fn recycle(
        &self,
        client: &mut Client,
        _: &Metrics,
    ) -> RecycleResult<tokio_postgres::Error> {
        // A client whose connection died (server restart, network) is dropped
        // here rather than handed to the next batch.
        if client.is_closed() {
            return Err(RecycleError::message("connection closed"));
        }
        Ok(())
    }
}

/// Opens one client (over TLS when `tls` is set) and drives its connection
/// on the runtime.
pub(crate) async fn open(
    config: &tokio_postgres::Config,
    tls: Option<&RustlsTls>,
) -> Result<Client, tokio_postgres::Error> {
    fn drive<F>(connection: F)
    where
        F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
    {
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "database connection ended");
            }
        });
    }
    Ok(match tls {
        Some(tls) => {
            let (client, connection) = config.connect(tls.clone()).await?;
            drive(connection);
            client
        }
        None => {
            let (client, connection) = config.connect(NoTls).await?;
            drive(connection);
            client
        }
    })
}

/// One diesel-async connection (over TLS when `tls` is set); its driver runs
/// on the current runtime.
pub(crate) async fn diesel_connection(
    config: tokio_postgres::Config,
    tls: Option<RustlsTls>,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    let bad = |e: tokio_postgres::Error| ConnectionError::BadConnection(e.to_string());
    match tls {
        Some(tls) => {
            let (client, connection) = config.connect(tls).await.map_err(bad)?;
            AsyncPgConnection::try_from_client_and_connection(client, connection).await
        }
        None => {
            let (client, connection) = config.connect(NoTls).await.map_err(bad)?;
            AsyncPgConnection::try_from_client_and_connection(client, connection).await
        }
    }
}

/// The TLS connector when the URL asks for TLS (`sslmode=require`). Without
/// it (`disable`, or `prefer`, the default) connections are plain, as they
/// were before TLS support: `prefer` does not try TLS.
pub(crate) fn tls_for(
    config: &tokio_postgres::Config,
    cfg: &PgConfig,
) -> Result<Option<RustlsTls>, StoreError> {
    match config.get_ssl_mode() {
        SslMode::Require => RustlsTls::new(cfg.ca_file.as_deref()).map(Some),
        _ => Ok(None),
    }
}

/// The driver settings of every connection: URL, connect timeout,
/// `statement_timeout` and an application name visible in `pg_stat_activity`.
pub(crate) fn driver_config(cfg: &PgConfig) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = cfg
        .url
        .parse()
        .map_err(|_| StoreError::Internal("invalid database URL".into()))?;
    let timeout = format!("-c statement_timeout={}", cfg.statement_timeout.as_millis());
    let options = match config.get_options() {
        Some(existing) if !existing.is_empty() => format!("{existing} {timeout}"),
        _ => timeout,
    };
    config
        .options(&options)
        .connect_timeout(cfg.connect_timeout)
        .application_name("sluice");
    Ok(config)
}

/// Builds both pools. Connections are opened lazily, on first use.
pub(crate) fn build(cfg: &PgConfig) -> Result<(MetaPool, LoaderPool), StoreError> {
    let config = driver_config(cfg)?;
    let tls = tls_for(&config, cfg)?;
    let meta_config = config.clone();
    let meta_tls = tls.clone();
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    // Only check for open transactions: a dead connection shows up as an
    // error on first use, which the caller may retry.
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup =
        Box::new(move |_url| diesel_connection(meta_config.clone(), meta_tls.clone()).boxed());
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        &cfg.url,
        manager_config,
    );
    let meta = MetaPool::builder(manager)
        .max_size(cfg.pool_size.max(2))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(cfg.wait_timeout))
        .create_timeout(Some(cfg.connect_timeout))
        .build()
        .map_err(|_| StoreError::Internal("cannot build the connection pool".into()))?;
    let loader = LoaderPool::builder(LoaderConnections { config, tls })
        .max_size(cfg.loader_pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(cfg.wait_timeout))
        .create_timeout(Some(cfg.connect_timeout))
        .build()
        .map_err(|_| StoreError::Internal("cannot build the loader pool".into()))?;
    Ok((meta, loader))
}
