//! Wiring: builds the store, the object-store factory and the application,
//! then runs the requested command.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice_application::delivery::{Deliverer, DeliverySettings};
use sluice_application::engine::{Engine, Worker};
use sluice_application::ports::system::{SystemClock, UlidGenerator};
use sluice_application::ports::{ApiKeyStore, PageRequest, Ports, WorkerId};
use sluice_application::usecases::UseCases;
use sluice_application::{Tunables, WorkSignal};
use sluice_domain::identifier::Identifier;
use sluice_domain::role::Role;
use sluice_object_store::{AmbientEnvironment, ObjectStoreSourceFactory, parse_local_roots};
use sluice_postgres::{PgConfig, PgStore};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{ApikeyCommand, DbArgs, EngineArgs, ServeArgs, WorkerArgs};
use crate::embedded::{self, EmbeddedDb};

type Res<T> = Result<T, String>;

/// How long idle workers wait before looking for work again.
const IDLE_POLL: Duration = Duration::from_millis(250);

/// `DATABASE_URL`, when it is set (and not blank).
fn configured_url(db: &DbArgs) -> Option<&str> {
    db.database_url
        .as_deref()
        .map(str::trim)
        .filter(|url| !url.is_empty())
}

/// `DATABASE_URL`, or the embedded PostgreSQL a running `sluice serve`
/// supervises in the data directory.
fn database_url(db: &DbArgs) -> Res<String> {
    if let Some(url) = configured_url(db) {
        return Ok(url.to_owned());
    }
    embedded::running_url(&db.data_dir).ok_or_else(|| {
        format!(
            "DATABASE_URL is not set and no `sluice serve` runs an embedded PostgreSQL in {}: start `sluice serve` there, or set DATABASE_URL=postgres://user:password@localhost:5432/sluice (or pass --database-url)",
            db.data_dir.display()
        )
    })
}

/// Applies migrations (under an advisory lock), then connects.
async fn open_store(db: &DbArgs, engine_workers: usize) -> Res<PgStore> {
    let applied = sluice_postgres::migrate_with(&pg_config(db)?)
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    connect_store(db, engine_workers).await
}

/// The connection settings every command shares: URL and TLS CA file.
fn pg_config(db: &DbArgs) -> Res<PgConfig> {
    let mut config = PgConfig::new(database_url(db)?);
    config.ca_file = db
        .database_ca_file
        .as_deref()
        .filter(|f| !f.trim().is_empty())
        .map(std::path::PathBuf::from);
    Ok(config)
}

/// Connects to an already migrated database, with a loader pool sized for
/// `engine_workers` concurrent batch commits.
async fn connect_store(db: &DbArgs, engine_workers: usize) -> Res<PgStore> {
    let warehouse = Identifier::parse(&db.warehouse_schema)
        .map_err(|e| format!("SLUICE_WAREHOUSE_SCHEMA: {e}"))?;
    let mut config = pg_config(db)?;
    config.pool_size = db.db_pool_size.max(2);
    config.loader_pool_size = engine_workers.max(1) + 1;
    config.warehouse_schema = warehouse;
    if let Some(f) = db.failpoint.as_deref().filter(|f| !f.is_empty()) {
        config.failpoint = Some(sluice_postgres::Failpoint::parse(f).ok_or_else(|| {
            format!("SLUICE_FAILPOINT: `{f}` is not before_commit:N, after_commit:N, before_finalize:N or finalize_before_commit:N")
        })?);
        tracing::warn!(failpoint = f, "crash-test fail point armed");
    }
    PgStore::connect(&config)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))
}

/// Runs `workers` engine workers on a runtime and database pools of their
/// own, on their own threads. Decoding and validating a batch is CPU work
/// between await points; on a shared runtime it would hold up the API's
/// requests (and the connections those requests wait on) for a whole batch.
fn spawn_engine(
    db: DbArgs,
    settings: EngineArgs,
    workers: usize,
    shutdown: watch::Receiver<bool>,
    wake: WorkSignal,
) -> Res<std::thread::JoinHandle<()>> {
    let threads = workers
        .min(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
        .max(1);
    std::thread::Builder::new()
        .name("sluice-engine".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("sluice-engine")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the engine runtime");
                    return;
                }
            };
            runtime.block_on(async move {
                let store = match connect_store(&db, workers).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "the engine cannot reach the database");
                        return;
                    }
                };
                // One wake signal with the API (Notify needs no runtime).
                let engine = Engine::new(ports(store, Some(&settings)), tunables(Some(&settings)))
                    .with_wake(wake);
                let mut tasks = JoinSet::new();
                spawn_workers(&engine, workers, &shutdown, &mut tasks);
                while tasks.join_next().await.is_some() {}
            });
        })
        .map_err(|e| format!("cannot start the engine thread: {e}"))
}

/// What the use cases and the engine run with: the defaults, and the
/// engine's settings when the command has them.
fn tunables(engine: Option<&EngineArgs>) -> Tunables {
    let mut tunables = Tunables::default();
    if let Some(e) = engine {
        tunables.lease_ms = i64::try_from(e.lease_seconds.max(1) * 1000).unwrap_or(30_000);
        tunables.batch_rows = e.batch_rows.max(1);
        tunables.allow_ambient_credentials = e.allow_ambient_credentials;
        tunables.allow_private_webhooks = e.webhook_allow_private;
    }
    tunables
}

/// Every port over `store`, the object stores (local roots from `engine`)
/// and the system's clock and ids.
fn ports(store: PgStore, engine: Option<&EngineArgs>) -> Ports {
    let roots = engine.map_or_else(
        || parse_local_roots("./data"),
        |e| parse_local_roots(&e.local_roots),
    );
    let mut sources = ObjectStoreSourceFactory::new(roots);
    if engine.is_some_and(|e| e.allow_ambient_credentials) {
        sources = sources.with_ambient_credentials(AmbientEnvironment::from_process());
    }
    Ports::from_store(
        Arc::new(store),
        Arc::new(sources),
        Arc::new(SystemClock),
        Arc::new(UlidGenerator::default()),
    )
}

/// The use cases over `store`.
fn use_cases(store: PgStore, engine: Option<&EngineArgs>) -> UseCases {
    UseCases::new(ports(store, engine), tunables(engine))
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

fn spawn_workers(
    engine: &Engine,
    count: usize,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    let prefix = format!("{}-{}", host_name(), std::process::id());
    for n in 0..count {
        let worker = Worker::new(engine.clone(), WorkerId(format!("{prefix}-{n}")), IDLE_POLL)
            .with_shutdown(shutdown.clone());
        tasks.spawn(worker.run());
    }
}

/// One webhook delivery worker over `ports` (decision 0017), stopped by
/// `shutdown`.
fn spawn_deliverer(
    ports: Ports,
    engine: &EngineArgs,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> Res<()> {
    let sender = sluice_webhooks::HttpWebhookSender::new(sluice_webhooks::SenderConfig {
        allow_private: engine.webhook_allow_private,
        ..sluice_webhooks::SenderConfig::default()
    })?;
    let settings = DeliverySettings {
        public_url: engine
            .public_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
        ..DeliverySettings::default()
    };
    let worker = WorkerId(format!("{}-{}-webhooks", host_name(), std::process::id()));
    let deliverer =
        Deliverer::new(ports, Arc::new(sender), settings, worker).with_shutdown(shutdown.clone());
    tasks.spawn(deliverer.run());
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Stops the workers: they finish their current step; a partition still
/// loading after the grace period is left to its lease.
async fn stop(shutdown: watch::Sender<bool>, mut tasks: JoinSet<()>) {
    let _ = shutdown.send(true);
    let grace = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            () = &mut grace => {
                tracing::warn!("workers still busy after 10 s; their partitions will be taken over when their leases expire");
                tasks.abort_all();
                break;
            }
        }
    }
}

/// `sluice serve`: with no `DATABASE_URL`, on an embedded PostgreSQL that
/// it starts first and stops last.
pub async fn serve(mut args: ServeArgs) -> Res<()> {
    if configured_url(&args.db).is_some() {
        return serve_on(args, None).await;
    }
    let db = EmbeddedDb::start(&args.db.data_dir).await?;
    args.db.database_url = Some(db.url());
    let result = serve_on(args, Some(&db)).await;
    db.stop().await;
    result
}

/// Creates an admin key when the database has never had one (the first
/// start of an embedded cluster), returning its secret to show once.
async fn first_admin_key(store: &PgStore, app: &UseCases) -> Res<Option<String>> {
    let page = PageRequest {
        limit: 1,
        cursor: None,
    };
    let existing = store
        .list_api_keys(&page)
        .await
        .map_err(|e| format!("cannot read the API keys: {e}"))?;
    if !existing.items.is_empty() {
        return Ok(None);
    }
    let created = app
        .issue_api_key("created by sluice serve on first start", Role::Admin)
        .await
        .map_err(|e| format!("cannot create the first admin key: {e}"))?;
    tracing::info!(key = %created.key.id, "first admin key created");
    Ok(Some(created.secret))
}

/// What to say once the server listens: where the dashboard and the API
/// are, which database, and a first key.
fn banner(addr: SocketAddr, database: &str, first_key: Option<&str>) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let base = format!("http://{host}:{}", addr.port());
    let mut text = format!(
        "\nSluice is ready.\n  dashboard  {base}/\n  API        {base}/api/v1  (OpenAPI document: {base}/api/v1/openapi.json)\n  database   {database}\n"
    );
    if let Some(key) = first_key {
        text.push_str(&format!(
            "\nAn admin API key was created; it is shown only this once (Sluice keeps only its hash):\n  {key}\n\nUse it from a terminal:\n  export SLUICE_URL={base} SLUICE_API_KEY={key}\n  sluice pipelines ls\n"
        ));
    }
    text
}

async fn serve_on(args: ServeArgs, embedded: Option<&EmbeddedDb>) -> Res<()> {
    let workers = args.engine.worker_count();
    // The API's own store: the engine's workers get theirs (see `spawn_engine`).
    let store = open_store(&args.db, 0).await?;
    let keys = store.clone();
    let mut tunables = tunables(Some(&args.engine));
    tunables.auth_cache_ms = args.auth_cache_ms;
    let app_ports = ports(store, Some(&args.engine));
    let app = UseCases::new(app_ports.clone(), tunables);
    if let Some(key) = &args.admin_key {
        let created = app
            .ensure_api_key(key, Role::Admin, "SLUICE_ADMIN_KEY")
            .await
            .map_err(|e| format!("SLUICE_ADMIN_KEY: {e}"))?;
        if created {
            tracing::info!("admin key from SLUICE_ADMIN_KEY created");
        }
    }
    let first_key = match (embedded, &args.admin_key) {
        (Some(_), None) => first_admin_key(&keys, &app).await?,
        _ => None,
    };
    drop(keys);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let engine = if workers > 0 {
        Some(spawn_engine(
            args.db.clone(),
            args.engine.clone(),
            workers,
            shutdown_rx.clone(),
            app.wake().clone(),
        )?)
    } else {
        None
    };
    let mut tasks = JoinSet::new();
    spawn_deliverer(app_ports, &args.engine, &shutdown_rx, &mut tasks)?;
    tasks.spawn(poll_scheduler(
        app.clone(),
        Duration::from_secs(args.poll_tick_seconds.max(1)),
        shutdown_rx.clone(),
    ));
    raise_open_files_limit();
    let body_timeout = Duration::from_secs(args.http_body_timeout_seconds.max(1));
    let (http, addrs) = crate::http::serve(app.clone(), args.bind, body_timeout)
        .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let addr = addrs.first().copied().unwrap_or(args.bind);
    tracing::info!(bind = %addr, workers, "sluice serve started");
    let handle = http.handle();
    let server = tokio::spawn(http);
    let database = embedded.map_or_else(
        || "PostgreSQL at DATABASE_URL".to_owned(),
        |db| db.describe(&args.db.data_dir),
    );
    println!("{}", banner(addr, &database, first_key.as_deref()));
    let failure = match embedded {
        Some(db) => tokio::select! {
            () = shutdown_signal() => None,
            reason = embedded::exited(db.exit_watch()) => Some(reason),
        },
        None => {
            shutdown_signal().await;
            None
        }
    };
    match &failure {
        Some(reason) => tracing::error!("{reason}; shutting down"),
        None => tracing::info!("shutting down"),
    }
    handle.stop(true).await;
    let _ = server.await;
    stop(shutdown_tx, tasks).await;
    if let Some(engine) = engine {
        // Workers hand their partitions back at the next batch boundary; a
        // batch still running after the grace period is left to its lease.
        let joined = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::task::spawn_blocking(move || engine.join()),
        )
        .await;
        if joined.is_err() {
            tracing::warn!(
                "engine still busy after 10 s; its partitions will be taken over when their leases expire"
            );
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Checks the touch files of pipelines whose interval elapsed, every `tick`.
async fn poll_scheduler(app: UseCases, tick: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        match app.poll_cycle(false).await {
            Ok(r) if r.triggered > 0 => tracing::info!(
                checked = r.checked,
                triggered = r.triggered,
                "polling cycle"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "polling cycle failed"),
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(tick) => {}
        }
    }
}

/// `sluice worker`.
pub async fn worker(args: WorkerArgs) -> Res<()> {
    let workers = args.engine.worker_count();
    if workers == 0 {
        return Err("SLUICE_WORKERS=0 leaves a worker process nothing to do".into());
    }
    let store = open_store(&args.db, workers).await?;
    let worker_ports = ports(store, Some(&args.engine));
    let engine = Engine::new(worker_ports.clone(), tunables(Some(&args.engine)));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    spawn_workers(&engine, workers, &shutdown_rx, &mut tasks);
    spawn_deliverer(worker_ports, &args.engine, &shutdown_rx, &mut tasks)?;
    tracing::info!(workers, "sluice worker started");
    shutdown_signal().await;
    tracing::info!("shutting down");
    stop(shutdown_tx, tasks).await;
    Ok(())
}

/// `sluice migrate`.
pub async fn migrate(db: DbArgs) -> Res<()> {
    let applied = sluice_postgres::migrate_with(&pg_config(&db)?)
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    eprintln!("sluice: {applied} migration(s) applied; the schema is up to date");
    Ok(())
}

/// `sluice apikey create`.
pub async fn apikey(cmd: ApikeyCommand) -> Res<()> {
    let ApikeyCommand::Create(args) = cmd;
    let role = Role::parse(&args.role).ok_or_else(|| {
        format!(
            "--role must be admin, editor or viewer, not `{}`",
            args.role
        )
    })?;
    let store = open_store(&args.db, 0).await?;
    let created = use_cases(store, None)
        .issue_api_key(&args.name, role)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "sluice: created {} key {} (shown once):",
        created.key.role, created.key.id
    );
    println!("{}", created.secret);
    Ok(())
}

/// `sluice openapi`.
pub fn openapi() -> Res<()> {
    println!("{}", crate::http::openapi_json());
    Ok(())
}

/// Raises this process's soft limit of open files to its hard limit: every
/// client connection is a file, and a soft limit of 1,024 (a common default)
/// would refuse connections long before the server is busy.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
}
