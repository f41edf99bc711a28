//! Connection settings of the PostgreSQL store.

use std::fmt;
use std::time::Duration;

use sluice_domain::identifier::Identifier;

/// How [`crate::PgStore`] connects. `sluice-server` fills it from its
/// environment (`DATABASE_URL`, `SLUICE_WAREHOUSE_SCHEMA`, ...).
#[derive(Clone)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database`. With `?sslmode=require`
    /// connections use TLS and verify the server (see [`PgConfig::ca_file`]);
    /// without it, or with `disable` or `prefer`, they are plain.
    pub url: String,
    /// PEM file of the certificates that may sign the database server's
    /// certificate, for `sslmode=require` (a managed database's CA bundle, a
    /// self-signed server). `None`: the system's trusted roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Connections of the metadata pool (API reads, queue claims).
    pub pool_size: usize,
    /// Connections of the loader pool (one per concurrently committing batch).
    pub loader_pool_size: usize,
    /// Longest wait for a new TCP connection and start-up handshake.
    pub connect_timeout: Duration,
    /// Longest wait for a free pooled connection before `Unavailable`.
    pub wait_timeout: Duration,
    /// `statement_timeout` of every connection, so a stuck query cannot hold
    /// a connection (and its locks) forever.
    pub statement_timeout: Duration,
    /// Schema of destination tables (metadata lives in `sluice`).
    pub warehouse_schema: Identifier,
    /// Test-only crash hook (see [`crate::Failpoint`]); `None` in production.
    pub failpoint: Option<crate::Failpoint>,
}

impl PgConfig {
    /// Defaults for everything but the URL: pools of 10 and 4 connections,
    /// 5 s connect and wait timeouts, 5 min statement timeout (a batch COPY
    /// of a wide table may take a while), warehouse schema `public`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca_file: None,
            pool_size: 10,
            loader_pool_size: 4,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(300),
            warehouse_schema: Identifier::parse("public").unwrap_or_else(|_| unreachable!()),
            failpoint: None,
        }
    }
}

/// Never prints the URL: it may carry a password.
impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &"<redacted>")
            .field("ca_file", &self.ca_file)
            .field("pool_size", &self.pool_size)
            .field("loader_pool_size", &self.loader_pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("wait_timeout", &self.wait_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("warehouse_schema", &self.warehouse_schema)
            .field("failpoint", &self.failpoint)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_url() {
        let c = PgConfig::new("postgres://u:hunter2@db/x");
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(c.warehouse_schema.as_str(), "public");
    }
}
