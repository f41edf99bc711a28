//! Configuration: every setting is an environment variable and a flag of the
//! same meaning (the README's table). Secrets are never echoed by `--help`.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::cli::args::{ApikeysArgs, ConnectorsArgs, PipelinesArgs, PollArgs, RunArgs, RunsArgs};

/// What `sluice --help` says first.
const ABOUT: &str = "\
Sluice loads files from object stores (S3 and compatible servers, GCS, Azure, local
directories, HTTP) into PostgreSQL: every row is validated, loaded in parallel partitions
and committed exactly once, so a failed run resumes where it stopped. Progress, rejected
rows, retries and touch-file polling are in its dashboard, its HTTP API and this command.";

/// The command list of `sluice --help`, in two groups (clap lists
/// subcommands in one); a test checks that it names every command.
const HELP_TEMPLATE: &str = "\
{about}

{usage-heading} {usage}

Server commands (where Sluice runs; DATABASE_URL, or an embedded PostgreSQL in SLUICE_DATA_DIR):
  serve       Serve the dashboard and the API, run workers and touch-file polling
  worker      Run workers only, sharing the work of the server's database
  migrate     Apply database migrations and exit
  apikey      Create an API key directly in the database
  openapi     Print the OpenAPI document of the HTTP API

Client commands (talk to a running server at SLUICE_URL with SLUICE_API_KEY):
  connectors  Object stores holding the files: ls, show, create, test, rm
  pipelines   What to load, from where, into which table: ls, show, create, edit, rm, dry-run,
              files (the file ledger), forget
  apikeys     API keys (admin): ls, create, revoke
  run         Start a run of a pipeline, and follow it with --follow
  runs        Runs: ls, show, files, watch, errors, retry, cancel
  poll        Touch-file polling: the watched pipelines, or a cycle now with --now

Options:
{options}{after-help}";

/// The end of `sluice --help`: a first session.
const AFTER_HELP: &str = "\
Start here:
  sluice serve                          # dashboard and API on http://127.0.0.1:8080, its own PostgreSQL
  export SLUICE_API_KEY=sk_...          # the admin key it prints on its first start
  sluice connectors create -f connector.json
  sluice pipelines create -f pipeline.json
  sluice run 'Daily import' --follow    # progress bars; exit status 0, 2 with rejected rows, 1 if it failed

`sluice <command> --help` tells more about each command.";

/// The `sluice` command.
#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = ABOUT,
    help_template = HELP_TEMPLATE,
    after_help = AFTER_HELP,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The log setting of whichever command runs (client commands log
    /// warnings only: their output is for people).
    pub fn log_setting(&self) -> &str {
        match &self.command {
            Command::Serve(a) => &a.db.log,
            Command::Worker(a) => &a.db.log,
            Command::Migrate(a) => &a.log,
            Command::Apikey(ApikeyCommand::Create(a)) => &a.db.log,
            _ => "warn",
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard and the API, run in-process workers and the
    /// touch-file polling scheduler. With no DATABASE_URL, on a private
    /// PostgreSQL of its own under --data-dir.
    Serve(ServeArgs),
    /// Run workers only: they share the work queue with every other process.
    Worker(WorkerArgs),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// Manage API keys directly in the database (the client command is `apikeys`).
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Connectors: the object stores holding the files.
    Connectors(ConnectorsArgs),
    /// Pipelines: what to load, from where, into which table.
    Pipelines(PipelinesArgs),
    /// API keys (admin keys only).
    Apikeys(ApikeysArgs),
    /// Start a run of a pipeline; with --follow, watch it to the end.
    Run(RunArgs),
    /// Runs: list, show, watch, export errors, retry, cancel.
    Runs(RunsArgs),
    /// Touch-file polling: the watched pipelines, or a cycle now.
    Poll(PollArgs),
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
    /// Let admins create connectors that sign in with this server's own
    /// cloud identity (environment keys, web identity, instance or task
    /// role, application-default credentials, managed identity).
    #[arg(
        long,
        env = "SLUICE_ALLOW_AMBIENT_CREDENTIALS",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true"
    )]
    pub allow_ambient_credentials: bool,
    /// Let webhooks target loopback, link-local and private addresses
    /// (refused by default, so a subscription cannot probe the internal
    /// network).
    #[arg(
        long,
        env = "SLUICE_WEBHOOK_ALLOW_PRIVATE",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true"
    )]
    pub webhook_allow_private: bool,
    /// The server's public base URL (`https://sluice.example.com`), for the
    /// links in webhook payloads; paths only when unset.
    #[arg(long, env = "SLUICE_PUBLIC_URL")]
    pub public_url: Option<String>,
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
    /// How long a request body may take to arrive whole; a slower one is
    /// answered 408, so a client trickling a body cannot hold a connection.
    #[arg(long, env = "SLUICE_HTTP_BODY_TIMEOUT_SECONDS", default_value_t = 30)]
    pub http_body_timeout_seconds: u64,
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn help_names_every_command_in_its_group() {
        let mut cmd = Cli::command();
        let help = cmd.render_help().to_string();
        assert!(
            help.starts_with("Sluice loads files from object stores"),
            "{help}"
        );
        let server = help.find("Server commands").expect("server group");
        let client = help.find("Client commands").expect("client group");
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let line = format!("\n  {} ", sub.get_name());
            let at = help
                .find(&line)
                .unwrap_or_else(|| panic!("`{}` is not in the help:\n{help}", sub.get_name()));
            let in_server = at > server && at < client;
            let is_server =
                ["serve", "worker", "migrate", "apikey", "openapi"].contains(&sub.get_name());
            assert_eq!(
                in_server,
                is_server,
                "{} is in the wrong group",
                sub.get_name()
            );
        }
    }

    #[test]
    fn the_client_commands_parse() {
        for line in [
            "sluice connectors ls --json",
            "sluice connectors create -f c.json",
            "sluice pipelines edit pipe_1 -f patch.json",
            "sluice pipelines dry-run Customers --rows 100",
            "sluice apikeys create --role viewer",
            "sluice run Customers --follow",
            "sluice runs errors run_1 --csv -o f.csv",
            "sluice runs retry run_1 --follow",
            "sluice run Customers --all-files",
            "sluice run Customers --reload in/a.csv --reload in/b.csv",
            "sluice pipelines files Customers --prefix in/",
            "sluice pipelines forget Customers --key in/a.csv",
            "sluice runs files run_1",
            "sluice poll --now",
        ] {
            let words = line.split(' ');
            assert!(Cli::try_parse_from(words).is_ok(), "{line}");
        }
        for wrong in [
            "sluice pipelines forget Customers",
            "sluice pipelines forget Customers --key a --prefix b",
            "sluice run Customers --all-files --reload a",
        ] {
            assert!(Cli::try_parse_from(wrong.split(' ')).is_err(), "{wrong}");
        }
    }
}
