//! The client commands' arguments: `sluice connectors|pipelines|apikeys|run|runs|poll`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Where the API is and how to call it; every client command takes these.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The Sluice server.
    #[arg(
        long,
        env = "SLUICE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// The API key (`sk_…`). Prefer the environment variable: a flag is
    /// visible in the process list.
    #[arg(long, env = "SLUICE_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Print the API's JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

/// `sluice connectors …`.
#[derive(Debug, Args)]
pub struct ConnectorsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ConnectorsCommand,
    /// API settings.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The connector commands.
#[derive(Debug, Subcommand)]
pub enum ConnectorsCommand {
    /// List connectors.
    Ls(ListArgs),
    /// Show one connector (never its credentials).
    Show {
        /// Connector id (`conn_…`) or name.
        connector: String,
    },
    /// Create a connector from a JSON file (`-` for standard input).
    Create(FileArg),
    /// Check that the store answers and the credentials work.
    Test {
        /// Connector id or name.
        connector: String,
    },
    /// Delete a connector no pipeline uses.
    Rm {
        /// Connector id or name.
        connector: String,
    },
}

/// `sluice pipelines …`.
#[derive(Debug, Args)]
pub struct PipelinesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PipelinesCommand,
    /// API settings.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The pipeline commands.
#[derive(Debug, Subcommand)]
pub enum PipelinesCommand {
    /// List pipelines.
    Ls(ListArgs),
    /// Show one pipeline's definition.
    Show {
        /// Pipeline id (`pipe_…`) or name.
        pipeline: String,
    },
    /// Create a pipeline from a JSON file (`-` for standard input).
    Create(FileArg),
    /// Change a pipeline with a JSON merge patch, e.g. {"status": "paused"}.
    Edit {
        /// Pipeline id or name.
        pipeline: String,
        /// The patch.
        #[command(flatten)]
        patch: FileArg,
    },
    /// Delete a pipeline (not while a run is active).
    Rm {
        /// Pipeline id or name.
        pipeline: String,
    },
    /// List the files a pipeline has loaded (its file ledger), newest first.
    Files {
        /// Pipeline id or name.
        pipeline: String,
        /// Only keys starting with this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// Page settings.
        #[command(flatten)]
        list: ListArgs,
    },
    /// Forget ledger entries, so the next run reads those files again.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["key", "prefix"])))]
    Forget {
        /// Pipeline id or name.
        pipeline: String,
        /// Forget exactly this key.
        #[arg(long)]
        key: Option<String>,
        /// Forget every key starting with this prefix ("" for the whole ledger).
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Validate the first rows as a run would, loading nothing.
    DryRun {
        /// Pipeline id or name.
        pipeline: String,
        /// Rows to read (1 to 100000; the server's default is 1000).
        #[arg(long)]
        rows: Option<u64>,
    },
}

/// `sluice apikeys …`.
#[derive(Debug, Args)]
pub struct ApikeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ApikeysCommand,
    /// API settings.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The API key commands (admin keys only).
#[derive(Debug, Subcommand)]
pub enum ApikeysCommand {
    /// List keys (never their secrets).
    Ls(ListArgs),
    /// Create a key and print its secret (shown only this once).
    Create {
        /// Role: admin, editor or viewer.
        #[arg(long)]
        role: String,
        /// A label to recognise it by.
        #[arg(long, default_value = "created by sluice apikeys create")]
        name: String,
    },
    /// Revoke a key at once.
    Revoke {
        /// Key id (`key_…`).
        key: String,
    },
}

/// `sluice run PIPELINE`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Pipeline id (`pipe_…`) or name.
    pub pipeline: String,
    /// Follow the run until it ends: progress bars, its log, a summary, and
    /// the exit status of its outcome.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Read every listed file, whatever the file ledger says (a forced reload).
    #[arg(long, conflicts_with = "reload")]
    pub all_files: bool,
    /// Read this key again although the ledger holds it (repeatable).
    #[arg(long, value_name = "KEY")]
    pub reload: Vec<String>,
    /// API settings.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `sluice runs …`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RunsCommand,
    /// API settings.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The run commands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List a pipeline's runs, newest first.
    Ls {
        /// Pipeline id or name.
        pipeline: String,
        /// Page settings.
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show a run: counts, partitions, first errors, log.
    Show {
        /// Run id (`run_…`).
        run: String,
    },
    /// List the files a run reads, with their rows' outcomes.
    Files {
        /// Run id.
        run: String,
        /// Page settings.
        #[command(flatten)]
        list: ListArgs,
    },
    /// Follow a run until it ends (progress bars on a terminal, plain lines otherwise).
    Watch {
        /// Run id.
        run: String,
    },
    /// Export every rejected row of a run (streamed): JSON, or CSV with --csv.
    Errors {
        /// Run id.
        run: String,
        /// CSV (`Row,Column,Value,Error`) instead of JSON.
        #[arg(long)]
        csv: bool,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Retry a failed or completed_with_errors run (append and upsert resume).
    Retry {
        /// Run id.
        run: String,
        /// Follow the new run until it ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Cancel a pending or running run.
    Cancel {
        /// Run id.
        run: String,
    },
}

/// `sluice poll`.
#[derive(Debug, Args)]
pub struct PollArgs {
    /// Run a polling cycle now (admin, editor) instead of showing the watched pipelines.
    #[arg(long)]
    pub now: bool,
    /// API settings.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `ls` options.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Items to show (1 to 200).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Continue after this cursor (printed under a full page).
    #[arg(long)]
    pub cursor: Option<String>,
}

/// A JSON document to send.
#[derive(Debug, Clone, Args)]
pub struct FileArg {
    /// The JSON file (`-` for standard input).
    #[arg(long = "file", short = 'f')]
    pub file: PathBuf,
}
