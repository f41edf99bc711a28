//! [`ObjectStoreSourceFactory`]: connectors in, object sources out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_application::ports::{ObjectSource, ObjectSourceFactory, SourceError};
use sluice_domain::connector::{Connector, Credentials};
use tracing::debug;

use crate::credentials::AmbientEnvironment;
use crate::local::{LocalJail, normalize_allowed};
use crate::secret::Redactor;
use crate::settings::Settings;
use crate::source::ObjectStoreSource;

/// How long the connector test waits for the store by default.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest chunk a read stream yields by default. Record readers hold one
/// chunk at a time, so this bounds their buffer; 64 KiB keeps per-chunk
/// overhead negligible.
pub const DEFAULT_READ_CHUNK_BYTES: usize = 64 * 1024;

/// Opens [`ObjectStoreSource`]s for connectors of every type.
#[derive(Debug, Clone)]
pub struct ObjectStoreSourceFactory {
    local_roots: Arc<[PathBuf]>,
    /// The server's environment when connectors may sign in as the server
    /// (`SLUICE_ALLOW_AMBIENT_CREDENTIALS`); `None` refuses them.
    ambient: Option<AmbientEnvironment>,
    check_timeout: Duration,
    read_chunk_bytes: usize,
}

impl ObjectStoreSourceFactory {
    /// A factory whose `local` connectors may use a root inside one of
    /// `local_roots` (`SLUICE_LOCAL_ROOTS`) and nowhere else. Relative roots
    /// are taken from the working directory; existing ones are
    /// canonicalised, so a link in an allowed root's own path is fine.
    pub fn new(local_roots: impl IntoIterator<Item = PathBuf>) -> Self {
        Self {
            local_roots: normalize_allowed(local_roots).into(),
            ambient: None,
            check_timeout: DEFAULT_CHECK_TIMEOUT,
            read_chunk_bytes: DEFAULT_READ_CHUNK_BYTES,
        }
    }

    /// Lets connectors with ambient credentials sign in as the server, with
    /// the credentials `environment` points to (without this they are
    /// refused). Only what says how to sign in is taken from it.
    pub fn with_ambient_credentials(mut self, environment: AmbientEnvironment) -> Self {
        self.ambient = Some(environment);
        self
    }

    /// Sets how long [`ObjectSource::check`] waits (default 10 s).
    pub fn with_check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }

    /// Sets the largest chunk a read stream yields (default 64 KiB, at least 1).
    pub fn with_read_chunk_bytes(mut self, bytes: usize) -> Self {
        self.read_chunk_bytes = bytes.max(1);
        self
    }

    /// The allowed local roots, as compared.
    pub fn local_roots(&self) -> &[PathBuf] {
        &self.local_roots
    }

    /// Opens `connector` as the concrete type (the port's
    /// [`ObjectSourceFactory::open`] wraps this in an `Arc<dyn ObjectSource>`).
    /// `InvalidConfig` when its settings cannot work; no network request is
    /// made here.
    pub fn open_source(
        &self,
        connector: &Connector,
        credentials: &Credentials,
    ) -> Result<ObjectStoreSource, SourceError> {
        let kind = connector.connector_type;
        let settings = Settings::parse(kind, &connector.config, credentials)?;
        let source = match settings {
            Settings::Remote(remote) => {
                let redactor = Redactor::new(credentials.values());
                let ambient = match (remote.is_ambient(), &self.ambient) {
                    (false, _) => AmbientEnvironment::default(),
                    (true, Some(env)) => {
                        redactor.add(env.secrets());
                        env.clone()
                    }
                    (true, None) => {
                        return Err(SourceError::PermissionDenied(format!(
                            "connector {} uses ambient credentials, which this server does not \
                             allow (its operator can set SLUICE_ALLOW_AMBIENT_CREDENTIALS=1)",
                            connector.id
                        )));
                    }
                };
                ObjectStoreSource::remote(
                    kind,
                    remote,
                    redactor,
                    ambient,
                    self.check_timeout,
                    self.read_chunk_bytes,
                )?
            }
            Settings::Local { root } => ObjectStoreSource::local(
                LocalJail::new(&root, Arc::clone(&self.local_roots))?,
                self.check_timeout,
                self.read_chunk_bytes,
            ),
        };
        debug!(
            connector_id = %connector.id,
            connector_type = kind.as_str(),
            location = %source.location(),
            "opened object source"
        );
        Ok(source)
    }
}

impl ObjectSourceFactory for ObjectStoreSourceFactory {
    fn open(
        &self,
        connector: &Connector,
        credentials: &Credentials,
    ) -> Result<Arc<dyn ObjectSource>, SourceError> {
        Ok(Arc::new(self.open_source(connector, credentials)?))
    }
}

/// Splits a `SLUICE_LOCAL_ROOTS` value (colon-separated directories, like
/// `PATH`); empty entries are skipped.
pub fn parse_local_roots(value: &str) -> Vec<PathBuf> {
    value
        .split(':')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_roots_are_colon_separated() {
        assert_eq!(
            parse_local_roots("./data: /srv/in ::"),
            vec![PathBuf::from("./data"), PathBuf::from("/srv/in")]
        );
    }
}
