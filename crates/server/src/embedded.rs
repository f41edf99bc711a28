//! The zero-setup database: with no `DATABASE_URL`, `sluice serve` runs a
//! private PostgreSQL under `SLUICE_DATA_DIR` (sluice-embedded-postgres) and
//! stops it last when it stops; the other commands use the one a running
//! `sluice serve` supervises there.

use std::path::Path;

use sluice_embedded_postgres::{Cluster, ExitWatch, Options};

type Res<T> = Result<T, String>;

/// A cluster `sluice serve` started and supervises.
#[derive(Debug)]
pub struct EmbeddedDb {
    cluster: Cluster,
    version: String,
}

impl EmbeddedDb {
    /// Starts (and on first use creates) the cluster of `data_dir`.
    pub async fn start(data_dir: &Path) -> Res<Self> {
        let options = Options::new(data_dir);
        let cluster = tokio::task::spawn_blocking(move || Cluster::start(options))
            .await
            .map_err(|e| format!("the embedded PostgreSQL did not start: {e}"))?
            .map_err(|e| e.to_string())?;
        let version = cluster.binaries().version().unwrap_or_default();
        if cluster.initialised() {
            tracing::info!(version = %version, "embedded PostgreSQL cluster created");
        }
        if cluster.took_over() {
            tracing::warn!(
                "a PostgreSQL left running by an earlier sluice serve that did not stop cleanly was stopped and started again"
            );
        }
        if cluster.kept_elsewhere() {
            tracing::info!(
                user = cluster.service_user(),
                location = %cluster.pgdata().display(),
                "the embedded PostgreSQL keeps its files outside the data directory, where its user can reach them"
            );
        }
        tracing::info!(
            port = cluster.port(),
            data = %cluster.pgdata().display(),
            "embedded PostgreSQL ready"
        );
        Ok(Self { cluster, version })
    }

    /// The URL of its database.
    pub fn url(&self) -> String {
        self.cluster.url()
    }

    /// One line saying what it is and where, for the start-up banner.
    pub fn describe(&self, data_dir: &Path) -> String {
        let files = if self.cluster.kept_elsewhere() {
            format!(
                " (its files in {}, where user {} can reach them)",
                self.cluster.pgdata().display(),
                self.cluster.service_user()
            )
        } else {
            String::new()
        };
        format!(
            "embedded PostgreSQL {} in {} on 127.0.0.1:{}{files}",
            self.version,
            data_dir.display(),
            self.cluster.port()
        )
    }

    /// Resolves when the server exits by itself (not through [`EmbeddedDb::stop`]).
    pub fn exit_watch(&self) -> ExitWatch {
        self.cluster.exit_watch()
    }

    /// Stops the cluster (fast shutdown, everything committed kept).
    pub async fn stop(mut self) {
        let log = self.cluster.log_file();
        let stopped = tokio::task::spawn_blocking(move || self.cluster.stop()).await;
        match stopped {
            Ok(Ok(())) => tracing::info!("embedded PostgreSQL stopped"),
            Ok(Err(e)) => {
                tracing::error!(error = %e, log = %log.display(), "embedded PostgreSQL did not stop cleanly")
            }
            Err(e) => tracing::error!(error = %e, "embedded PostgreSQL did not stop cleanly"),
        }
    }
}

/// Waits until the supervised server exits and says how.
pub async fn exited(watch: ExitWatch) -> String {
    match tokio::task::spawn_blocking(move || watch.wait()).await {
        Ok(Some(status)) => format!("the embedded PostgreSQL stopped unexpectedly ({status})"),
        _ => "the embedded PostgreSQL stopped unexpectedly".into(),
    }
}

/// The URL of the cluster a running `sluice serve` supervises in `data_dir`.
pub fn running_url(data_dir: &Path) -> Option<String> {
    Cluster::running(&Options::new(data_dir)).map(|r| r.url)
}
