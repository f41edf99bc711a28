//! Opening a connector's object source: the one way the use cases and the
//! engine do it, with the one timeout a caller may put on the store's answers.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;

use sluice_domain::connector::Connector;
use sluice_domain::ids::ConnectorId;

use crate::AppError;
use crate::ports::{ObjectSource, Ports, SourceError, StoreError};

/// A connector's object source, opened, and how long its callers wait for an
/// answer.
pub(crate) struct ConnectorSource {
    /// Its store.
    pub source: Arc<dyn ObjectSource>,
    /// How long [`ConnectorSource::answer`] waits; `None` waits as long as
    /// the store takes (a run's reads, which the lease keeps alive).
    timeout: Option<Duration>,
}

/// Why a connector's source could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The connector could not be read.
    Connector(StoreError),
    /// Its credentials could not be read.
    Credentials(StoreError),
    /// The object-store adapter refused its settings.
    Refused {
        /// The connector's name.
        connector: String,
        /// Why.
        error: SourceError,
    },
}

impl From<OpenError> for AppError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Connector(e) | OpenError::Credentials(e) => e.into(),
            OpenError::Refused { error, .. } => error.into(),
        }
    }
}

/// Opens the source of connector `id`; see [`ConnectorSource::answer`] for
/// `timeout`.
pub(crate) async fn open_connector(
    ports: &Ports,
    id: ConnectorId,
    timeout: Option<Duration>,
) -> Result<ConnectorSource, OpenError> {
    let connector = ports
        .connectors
        .get_connector(id)
        .await
        .map_err(OpenError::Connector)?;
    open_known(ports, &connector, timeout).await
}

/// Opens the source of `connector`, already read from the store.
pub(crate) async fn open_known(
    ports: &Ports,
    connector: &Connector,
    timeout: Option<Duration>,
) -> Result<ConnectorSource, OpenError> {
    let credentials = ports
        .connectors
        .connector_credentials(connector.id)
        .await
        .map_err(OpenError::Credentials)?;
    let source = ports
        .sources
        .open(connector, &credentials)
        .map_err(|error| OpenError::Refused {
            connector: connector.name.clone(),
            error,
        })?;
    Ok(ConnectorSource { source, timeout })
}

impl ConnectorSource {
    /// Waits for `call` (a call on [`ConnectorSource::source`]) at most the
    /// timeout the source was opened with; past it the store is `Unreachable`.
    pub(crate) async fn answer<T>(
        &self,
        call: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        let Some(limit) = self.timeout else {
            return call.await;
        };
        tokio::time::timeout(limit, call)
            .await
            .unwrap_or_else(|_| Err(no_answer(limit)))
    }

    /// `stream` (an answer of [`ConnectorSource::source`] that comes in
    /// parts, such as a listing's pages), each part waited for at most the
    /// timeout; past it the stream ends with `Unreachable`.
    pub(crate) fn each_within_timeout<T: Send + 'static>(
        &self,
        stream: BoxStream<'static, Result<T, SourceError>>,
    ) -> BoxStream<'static, Result<T, SourceError>> {
        let Some(limit) = self.timeout else {
            return stream;
        };
        futures::stream::unfold(Some(stream), move |stream| async move {
            let mut stream = stream?;
            match tokio::time::timeout(limit, stream.next()).await {
                Ok(Some(item)) => Some((item, Some(stream))),
                Ok(None) => None,
                Err(_) => Some((Err(no_answer(limit)), None)),
            }
        })
        .boxed()
    }
}

/// A store that did not answer within `limit`.
fn no_answer(limit: Duration) -> SourceError {
    SourceError::Unreachable(format!("no answer within {} s", limit.as_secs()))
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use sluice_domain::connector::Credentials;
    use sluice_domain::time::Timestamp;

    use super::*;
    use crate::ports::{ByteStream, MockObjectSourceFactory, ObjectInfo};
    use crate::testing::contract::Fixture;
    use crate::testing::{InMemoryStore, ManualClock, SequentialIds};

    /// A store that never answers.
    struct Silent;

    #[async_trait]
    impl ObjectSource for Silent {
        async fn list(
            &self,
            _: &str,
            _: Option<&str>,
            _: &[String],
        ) -> Result<Vec<ObjectInfo>, SourceError> {
            std::future::pending().await
        }
        async fn head(&self, _: &str) -> Result<Option<ObjectInfo>, SourceError> {
            std::future::pending().await
        }
        async fn read(&self, _: &str, _: u64, _: bool) -> Result<ByteStream, SourceError> {
            std::future::pending().await
        }
        async fn delete(&self, _: &str) -> Result<(), SourceError> {
            std::future::pending().await
        }
        async fn check(&self) -> Result<crate::ports::SourceCheck, SourceError> {
            std::future::pending().await
        }
    }

    async fn ports_with(factory: MockObjectSourceFactory) -> (Ports, Connector) {
        let store = Arc::new(InMemoryStore::new());
        let (connector, credentials) = Fixture::new().connector();
        crate::ports::ConnectorStore::insert_connector(&*store, &connector, &credentials)
            .await
            .expect("insert");
        let ports = Ports::from_store(
            store,
            Arc::new(factory),
            Arc::new(ManualClock::new(Timestamp(0))),
            Arc::new(SequentialIds::default()),
        );
        (ports, connector)
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_opened_with_a_timeout_gives_up_after_it() {
        let mut factory = MockObjectSourceFactory::new();
        factory
            .expect_open()
            .times(2)
            // The stored connector, with its stored secrets.
            .withf(|c: &Connector, creds: &Credentials| {
                c.name == "Production S3" && creds.get("secretAccessKey").is_some()
            })
            .returning(|_, _| Ok(Arc::new(Silent)));
        let (ports, connector) = ports_with(factory).await;
        let patient = open_connector(&ports, connector.id, Some(Duration::from_secs(10)))
            .await
            .expect("open");
        let started = tokio::time::Instant::now();
        let answer = patient.answer(patient.source.head("k")).await;
        assert_eq!(
            answer,
            Err(SourceError::Unreachable("no answer within 10 s".into()))
        );
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        // Without a timeout the caller waits as long as the store takes.
        let unbounded = open_known(&ports, &connector, None).await.expect("open");
        let waited = tokio::time::timeout(
            Duration::from_secs(3600),
            unbounded.answer(unbounded.source.head("k")),
        )
        .await;
        assert!(waited.is_err(), "still waiting after an hour");
    }

    #[tokio::test]
    async fn a_refused_or_missing_connector_says_which_step_failed() {
        let mut factory = MockObjectSourceFactory::new();
        factory
            .expect_open()
            .returning(|_, _| Err(SourceError::InvalidConfig("no bucket".into())));
        let (ports, connector) = ports_with(factory).await;
        match open_connector(&ports, connector.id, None).await {
            Err(OpenError::Refused {
                connector: name,
                error,
            }) => {
                assert_eq!(name, connector.name);
                assert_eq!(error, SourceError::InvalidConfig("no bucket".into()));
            }
            _ => panic!("a refusal expected"),
        }
        let missing = sluice_domain::ids::ConnectorId::from_ulid(sluice_domain::ids::Ulid(7));
        assert!(matches!(
            open_connector(&ports, missing, None).await,
            Err(OpenError::Connector(StoreError::NotFound { .. }))
        ));
    }
}
