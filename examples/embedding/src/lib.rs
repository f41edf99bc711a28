//! # Embedding Sluice in another Rust service
//!
//! Sluice's application layer ([`sluice_application`]) is a library: its use
//! cases ([`UseCases`], what an API request asks) and its run engine
//! ([`Engine`], driven by [`Worker`]s) run over whatever implements its ports.
//! `sluice-server` is one service wiring them to PostgreSQL, the object
//! stores and HTTP; this crate is another, as small as one can be, and its
//! tests drive it twice over the same local directory of CSV files:
//!
//! - over the in-memory store of `sluice_application::testing` (feature
//!   `testing`): what an integration test of a service that embeds Sluice
//!   uses when it needs no database;
//! - over PostgreSQL ([`sluice_postgres::PgStore`](https://docs.rs/sluice-postgres))
//!   on a database of the test's own (`sluice-test-db`).
//!
//! Only the store changes between the two; the sources are
//! `sluice-object-store`'s [`ObjectStoreSourceFactory`], here allowed to read
//! `local` connectors inside one directory. `cargo xtask test` compiles and
//! runs both (`docs/testing.md`, "Embedding Sluice").
//!
//! What the service does with Sluice, in order:
//!
//! 1. [`Ingestion::new`]: [`Ports`] from one store, the sources, the system
//!    clock and ULIDs; the use cases and the engine over them, sharing one
//!    wake-up signal; an API key of the service's own, so that it calls the
//!    use cases as a [`Principal`] (they check roles whoever calls them).
//! 2. [`Ingestion::create_pipeline`]: a `local` connector on a directory and
//!    a pipeline over it, from the same JSON the HTTP API takes.
//! 3. [`Ingestion::run_until_idle`]: starts a run, lets a worker take every
//!    step there is (extract, load each partition, finalise), and reads the
//!    run's progress as `GET …/runs/{runId}/progress` would.
//!
//! ```
//! use std::sync::Arc;
//!
//! use serde_json::json;
//! use sluice_application::testing::InMemoryStore;
//! use sluice_domain::status::RunStatus;
//! use sluice_embedding_example::Ingestion;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("a.csv"), "id,name\n1,Ada\n2,Grace\n")?;
//!
//! let sluice = Ingestion::new(Arc::new(InMemoryStore::new()), dir.path()).await?;
//! let pipeline = sluice
//!     .create_pipeline(
//!         dir.path(),
//!         json!({
//!             "name": "people",
//!             "source": {"pattern": "*.csv"},
//!             "schema": {"columns": [
//!                 {"name": "id", "type": "integer"},
//!                 {"name": "name", "type": "string"}
//!             ]},
//!             "destination": {"table": "people"},
//!             "loadStrategy": "append"
//!         }),
//!     )
//!     .await?;
//! let progress = sluice.run_until_idle(&pipeline).await?;
//! assert_eq!(progress.status, RunStatus::Completed);
//! assert_eq!(progress.processed_rows, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sluice_application::AppError;
use sluice_application::engine::{Engine, Worker};
use sluice_application::ports::system::{SystemClock, UlidGenerator};
use sluice_application::ports::{Ports, Store, WorkerId};
use sluice_application::usecases::{Principal, RunRequest, UseCases, from_json, merge_patch};
use sluice_application::{Tunables, WorkSignal};
use sluice_domain::pipeline::Pipeline;
use sluice_domain::progress::RunProgress;
use sluice_domain::role::Role;
use sluice_object_store::ObjectStoreSourceFactory;

/// Sluice inside this service: the use cases, the engine, and who the
/// service is when it calls them.
#[derive(Debug, Clone)]
pub struct Ingestion {
    app: UseCases,
    engine: Engine,
    me: Principal,
}

impl Ingestion {
    /// Sluice over `store` (every storage port, as both the in-memory store
    /// and `PgStore` implement), reading `local` connectors whose root lies
    /// inside `local_root`.
    ///
    /// The service gets an admin key of its own, whose secret it keeps only
    /// in memory; a long-lived service with a persistent store would rather
    /// configure one secret and call [`UseCases::ensure_api_key`] with it.
    pub async fn new<S>(store: Arc<S>, local_root: &Path) -> Result<Self, AppError>
    where
        S: Store,
    {
        let sources = ObjectStoreSourceFactory::new(vec![local_root.to_path_buf()]);
        let ports = Ports::from_store(
            store,
            Arc::new(sources),
            Arc::new(SystemClock),
            Arc::new(UlidGenerator::default()),
        );
        let tunables = Tunables::default();
        let app = UseCases::new(ports.clone(), tunables.clone());
        // One signal: a run started through the use cases wakes the workers.
        let wake: WorkSignal = app.wake().clone();
        let engine = Engine::new(ports, tunables).with_wake(wake);
        let key = app.issue_api_key("embedding service", Role::Admin).await?;
        let me = app.authenticate(Some(&key.secret)).await?;
        Ok(Self { app, engine, me })
    }

    /// The use cases, for everything else the service asks of Sluice (as
    /// [`Ingestion::principal`]).
    pub fn use_cases(&self) -> &UseCases {
        &self.app
    }

    /// Who the service is when it calls the use cases.
    pub fn principal(&self) -> &Principal {
        &self.me
    }

    /// A `local` connector on `dir` and a pipeline reading it: `spec` is a
    /// pipeline definition as `POST /api/v1/pipelines` takes it, without
    /// its `connectorId`.
    pub async fn create_pipeline(
        &self,
        dir: &Path,
        mut spec: serde_json::Value,
    ) -> Result<Pipeline, AppError> {
        let connector = self
            .app
            .create_connector(
                &self.me,
                from_json(json!({
                    "name": format!("local {}", dir.display()),
                    "type": "local",
                    "config": {"root": dir.display().to_string()}
                }))?,
            )
            .await?;
        merge_patch(&mut spec, &json!({"connectorId": connector.id}));
        self.app.create_pipeline(&self.me, from_json(spec)?).await
    }

    /// Starts a run of `pipeline`, lets one worker do every step there is
    /// until the queue is empty (the run extracted, each partition loaded,
    /// the run finalised), and returns the run's progress.
    ///
    /// A service that loads continuously would instead spawn
    /// [`Worker::run`] with a shutdown signal ([`Worker::with_shutdown`]),
    /// as `sluice serve` does.
    pub async fn run_until_idle(&self, pipeline: &Pipeline) -> Result<RunProgress, AppError> {
        let run = self
            .app
            .start_run(&self.me, pipeline.id, RunRequest::default())
            .await?;
        let worker = Worker::new(
            self.engine.clone(),
            WorkerId("embedded-1".into()),
            Duration::from_millis(100),
        );
        worker.run_until_idle().await?;
        self.app.run_progress(&self.me, pipeline.id, run.id).await
    }
}
