//! Configuration: every setting is an environment variable and a flag of the
//! same meaning (DESIGN §6). Secrets are never echoed by `--help`.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

/// Sluice: load files from object stores into PostgreSQL, validated, resumable.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The log setting of whichever command runs.
    pub fn log_setting(&self) -> &str {
        match &self.command {
            Command::Serve(a) => &a.db.log,
            Command::Worker(a) => &a.db.log,
            Command::Migrate(a) => &a.log,
            Command::Apikey(ApikeyCommand::Create(a)) => &a.db.log,
            Command::Openapi => "warn",
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API, run in-process workers and the polling scheduler.
    Serve(ServeArgs),
    /// Run workers only: they share the work queue with every other process.
    Worker(WorkerArgs),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
}

/// Database settings.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL for metadata, queue and warehouse:
    /// postgres://user:password@host:port/db. Unset: `sluice serve` runs a
    /// private PostgreSQL of its own under --data-dir, and the other
    /// commands use the one a `sluice serve` runs there.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the embedded PostgreSQL keeps its cluster when DATABASE_URL is unset.
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./sluice-data")]
    pub data_dir: std::path::PathBuf,
    /// PEM file of the certificates that may sign the database's certificate,
    /// for `sslmode=require` in `DATABASE_URL` (default: the system's roots).
    #[arg(long, env = "SLUICE_DATABASE_CA_FILE")]
    pub database_ca_file: Option<String>,
    /// Schema of destination tables (metadata lives in schema `sluice`).
    #[arg(long, env = "SLUICE_WAREHOUSE_SCHEMA", default_value = "public")]
    pub warehouse_schema: String,
    /// Connections of the metadata pool.
    #[arg(long, env = "SLUICE_DB_POOL_SIZE", default_value_t = 10)]
    pub db_pool_size: usize,
    /// Log filter (`info`, `debug`, `sluice=debug,info`) or `json` for JSON lines.
    #[arg(long, env = "SLUICE_LOG", default_value = "info")]
    pub log: String,
    /// Test-only crash hook (`before_commit:N` / `after_commit:N`): the N-th
    /// batch commit of this process stops dead so a test can kill it there.
    #[arg(long, env = "SLUICE_FAILPOINT", hide = true)]
    pub failpoint: Option<String>,
}

/// Engine settings shared by `serve` and `worker`.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Partition workers in this process (0 = none); the number of cores by default.
    #[arg(long, env = "SLUICE_WORKERS")]
    pub workers: Option<usize>,
    /// Directories `local` connectors may use as their root, colon-separated.
    #[arg(long, env = "SLUICE_LOCAL_ROOTS", default_value = "./data")]
    pub local_roots: String,
    /// Lease of a claimed partition, renewed while it loads; a dead worker's
    /// partition is taken over after this long.
    #[arg(long, env = "SLUICE_LEASE_SECONDS", default_value_t = 30)]
    pub lease_seconds: u64,
    /// Most rows per committed batch.
    #[arg(long, env = "SLUICE_BATCH_ROWS", default_value_t = 20_000)]
    pub batch_rows: usize,
}

/// `sluice serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Database settings.
    #[command(flatten)]
    pub db: DbArgs,
    /// Engine settings.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Listen address of the API.
    #[arg(long, env = "SLUICE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// An admin API key ensured at start-up (idempotent), for automation. Prefer
    /// the environment variable: a flag is visible in the process list.
    #[arg(long, env = "SLUICE_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// How often the polling scheduler looks for pipelines whose interval elapsed.
    #[arg(long, env = "SLUICE_POLL_TICK_SECONDS", default_value_t = 15)]
    pub poll_tick_seconds: u64,
    /// How long a found API key is remembered, in milliseconds (0 = look it
    /// up on every request). A key revoked through another process stops
    /// working here within this time.
    #[arg(long, env = "SLUICE_AUTH_CACHE_MS", default_value_t = 2_000)]
    pub auth_cache_ms: u64,
}

/// `sluice worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Database settings.
    #[command(flatten)]
    pub db: DbArgs,
    /// Engine settings.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `sluice apikey …`.
#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create a key and print it (it is shown only once).
    Create(ApikeyCreateArgs),
}

/// `sluice apikey create`.
#[derive(Debug, Clone, Args)]
pub struct ApikeyCreateArgs {
    /// Database settings.
    #[command(flatten)]
    pub db: DbArgs,
    /// Role of the key: admin, editor or viewer.
    #[arg(long, default_value = "admin")]
    pub role: String,
    /// A label to recognise the key by.
    #[arg(long, default_value = "created by sluice apikey create")]
    pub name: String,
}

impl EngineArgs {
    /// Workers to run: the flag, or the number of cores.
    pub fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        })
    }
}
