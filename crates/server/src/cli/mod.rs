//! The client commands, on `sluice-client`: tables for people, `--json`
//! for scripts, and exit statuses that say how a run ended (0 `completed`,
//! 2 `completed_with_errors`, 1 `failed` or `cancelled`, 1 for an error of
//! the API, with its message).

pub mod args;
mod follow;
mod render;

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use sluice_client::domain::ids::{ApiKeyId, ConnectorId, PipelineId, RunId};
use sluice_client::domain::ledger::FileSelection;
use sluice_client::domain::role::Role;
use sluice_client::domain::status::RunStatus;
use sluice_client::types::StartRunRequest;
use sluice_client::{Client, ExportFormat, ForgetFiles, PageParams};

use crate::config::Command;
use args::{
    ApikeysCommand, ClientArgs, ConnectorsCommand, FileArg, ListArgs, PipelinesCommand, RunsCommand,
};

type Res<T> = Result<T, String>;

/// Runs a client command.
pub async fn run(command: Command) -> Res<ExitCode> {
    match command {
        Command::Connectors(a) => connectors(&Cli::new(&a.client)?, a.command).await,
        Command::Pipelines(a) => pipelines(&Cli::new(&a.client)?, a.command).await,
        Command::Apikeys(a) => apikeys(&Cli::new(&a.client)?, a.command).await,
        Command::Run(a) => {
            let cli = Cli::new(&a.client)?;
            let pipeline = cli.pipeline(&a.pipeline).await?;
            let run = if a.all_files || !a.reload.is_empty() {
                let request = StartRunRequest {
                    files: a.all_files.then_some(FileSelection::All),
                    reload: (!a.reload.is_empty()).then_some(a.reload),
                };
                cli.client.start_run_with(pipeline, &request).await
            } else {
                cli.client.start_run(pipeline).await
            };
            let run = run.map_err(api)?;
            if a.follow {
                if !cli.json {
                    eprintln!("Started run {} of {}.", run.id, a.pipeline);
                }
                return follow::follow(&cli.client, pipeline, run.id, cli.json).await;
            }
            cli.print(&run, || render::run_started(&run));
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs(a) => runs(&Cli::new(&a.client)?, a.command).await,
        Command::Poll(a) => {
            let cli = Cli::new(&a.client)?;
            if a.now {
                let cycle = cli.client.poll_now().await.map_err(api)?;
                cli.print(&cycle, || cycle.message.clone());
            } else {
                let status = cli.client.poll_status().await.map_err(api)?;
                cli.print(&status, || render::poll_status(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => Err("not a client command".into()),
    }
}

/// An API error as one line: the API's message (and for a 403 the roles
/// that may).
fn api(e: sluice_client::Error) -> String {
    e.to_string()
}

/// The exit status of a run's final status.
pub fn exit_status(status: RunStatus) -> ExitCode {
    match status {
        RunStatus::Completed => ExitCode::SUCCESS,
        RunStatus::CompletedWithErrors => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}

/// A configured client and how to print.
struct Cli {
    client: Client,
    json: bool,
}

impl Cli {
    fn new(args: &ClientArgs) -> Res<Self> {
        let key = args
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(
                "no API key: set SLUICE_API_KEY (or pass --api-key); `sluice serve` prints an admin key on its first start",
            )?;
        let client = Client::new(&args.url, key).map_err(api)?;
        Ok(Self {
            client,
            json: args.json,
        })
    }

    /// Prints `value` as JSON with `--json`, else what `human` makes of it.
    fn print<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("sluice: cannot print JSON: {e}"),
            }
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }

    /// A pipeline named by id (`pipe_…`) or by its exact name.
    async fn pipeline(&self, reference: &str) -> Res<PipelineId> {
        if let Ok(id) = PipelineId::parse(reference) {
            return Ok(id);
        }
        let mut found = Vec::new();
        let mut page = PageParams::first(200);
        loop {
            let list = self.client.list_pipelines(&page).await.map_err(api)?;
            found.extend(
                list.items
                    .into_iter()
                    .filter(|p| p.spec.name == reference)
                    .map(|p| p.id),
            );
            match list.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        one_of(found, "pipeline", reference)
    }

    /// A connector named by id (`conn_…`) or by its exact name.
    async fn connector(&self, reference: &str) -> Res<ConnectorId> {
        if let Ok(id) = ConnectorId::parse(reference) {
            return Ok(id);
        }
        let mut found = Vec::new();
        let mut page = PageParams::first(200);
        loop {
            let list = self.client.list_connectors(&page).await.map_err(api)?;
            found.extend(
                list.items
                    .into_iter()
                    .filter(|c| c.name == reference)
                    .map(|c| c.id),
            );
            match list.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        one_of(found, "connector", reference)
    }

    /// A run and its pipeline, from the run's id.
    async fn run(&self, reference: &str) -> Res<(PipelineId, RunId)> {
        let id = RunId::parse(reference).map_err(|e| e.to_string())?;
        let run = self.client.find_run(id).await.map_err(api)?;
        Ok((run.pipeline_id, id))
    }
}

/// The one id found for a name.
fn one_of<T: std::fmt::Display>(found: Vec<T>, kind: &str, name: &str) -> Res<T> {
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (Some(id), None) => Ok(id),
        (None, _) => Err(format!(
            "no {kind} is named `{name}` (give its id or exact name)"
        )),
        (Some(a), Some(b)) => Err(format!(
            "more than one {kind} is named `{name}` ({a}, {b}, …): give its id"
        )),
    }
}

/// Reads a JSON document from a file, or standard input for `-`.
fn read_json(arg: &FileArg) -> Res<serde_json::Value> {
    let (text, name) = if arg.file == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        (text, "standard input".to_owned())
    } else {
        let text = std::fs::read_to_string(&arg.file)
            .map_err(|e| format!("cannot read {}: {e}", arg.file.display()))?;
        (text, arg.file.display().to_string())
    };
    serde_json::from_str(&text).map_err(|e| format!("{name} is not JSON: {e}"))
}

fn page(list: &ListArgs) -> PageParams {
    PageParams {
        limit: Some(list.limit),
        cursor: list.cursor.clone(),
    }
}

async fn connectors(cli: &Cli, command: ConnectorsCommand) -> Res<ExitCode> {
    let c = &cli.client;
    match command {
        ConnectorsCommand::Ls(list) => {
            let page = c.list_connectors(&page(&list)).await.map_err(api)?;
            cli.print(&page, || render::connectors(&page));
        }
        ConnectorsCommand::Show { connector } => {
            let found = c.get_connector(cli.connector(&connector).await?).await;
            let found = found.map_err(api)?;
            cli.print(&found, || render::connector(&found));
        }
        ConnectorsCommand::Create(file) => {
            let created = c.create_connector(&read_json(&file)?).await.map_err(api)?;
            cli.print(&created, || {
                format!("Created connector {} ({}).", created.id, created.name)
            });
        }
        ConnectorsCommand::Test { connector } => {
            let check = c.test_connector(cli.connector(&connector).await?).await;
            let check = check.map_err(api)?;
            cli.print(&check, || {
                let verdict = if check.ok { "ok" } else { "FAILED" };
                format!("{verdict}: {} ({} ms)", check.message, check.duration_ms)
            });
            if !check.ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        ConnectorsCommand::Rm { connector } => {
            let id = cli.connector(&connector).await?;
            c.delete_connector(id).await.map_err(api)?;
            cli.print(&serde_json::json!({"deleted": id}), || {
                format!("Deleted connector {id}.")
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn pipelines(cli: &Cli, command: PipelinesCommand) -> Res<ExitCode> {
    let c = &cli.client;
    match command {
        PipelinesCommand::Ls(list) => {
            let page = c.list_pipelines(&page(&list)).await.map_err(api)?;
            cli.print(&page, || render::pipelines(&page));
        }
        PipelinesCommand::Show { pipeline } => {
            let found = c.get_pipeline(cli.pipeline(&pipeline).await?).await;
            let found = found.map_err(api)?;
            cli.print(&found, || render::pipeline(&found));
        }
        PipelinesCommand::Create(file) => {
            let created = c.create_pipeline(&read_json(&file)?).await.map_err(api)?;
            cli.print(&created, || {
                format!(
                    "Created pipeline {} ({}). Run it: sluice run {} --follow",
                    created.id, created.spec.name, created.id
                )
            });
        }
        PipelinesCommand::Edit { pipeline, patch } => {
            let id = cli.pipeline(&pipeline).await?;
            let changed = c.update_pipeline(id, &read_json(&patch)?).await;
            let changed = changed.map_err(api)?;
            cli.print(&changed, || render::pipeline(&changed));
        }
        PipelinesCommand::Rm { pipeline } => {
            let id = cli.pipeline(&pipeline).await?;
            c.delete_pipeline(id).await.map_err(api)?;
            cli.print(&serde_json::json!({"deleted": id}), || {
                format!("Deleted pipeline {id}.")
            });
        }
        PipelinesCommand::Files {
            pipeline,
            prefix,
            list,
        } => {
            let id = cli.pipeline(&pipeline).await?;
            let files = c.list_files(id, prefix.as_deref(), &page(&list)).await;
            let files = files.map_err(api)?;
            cli.print(&files, || render::ledger(&files));
        }
        PipelinesCommand::Forget {
            pipeline,
            key,
            prefix,
        } => {
            let id = cli.pipeline(&pipeline).await?;
            let which = match (key, prefix) {
                (Some(key), None) => ForgetFiles::Key(key),
                (None, Some(prefix)) => ForgetFiles::Prefix(prefix),
                _ => return Err("give exactly one of --key or --prefix".into()),
            };
            let answer = c.forget_files(id, &which).await.map_err(api)?;
            cli.print(&answer, || {
                format!(
                    "Forgot {} file(s); the next run reads them again.",
                    answer.forgotten
                )
            });
        }
        PipelinesCommand::DryRun { pipeline, rows } => {
            let id = cli.pipeline(&pipeline).await?;
            let report = c.dry_run(id, rows).await.map_err(api)?;
            cli.print(&report, || render::dry_run(&report));
            if report.failed_rows > 0 {
                return Ok(ExitCode::from(2));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn apikeys(cli: &Cli, command: ApikeysCommand) -> Res<ExitCode> {
    let c = &cli.client;
    match command {
        ApikeysCommand::Ls(list) => {
            let page = c.list_api_keys(&page(&list)).await.map_err(api)?;
            cli.print(&page, || render::api_keys(&page));
        }
        ApikeysCommand::Create { role, name } => {
            let role = Role::parse(&role)
                .ok_or_else(|| format!("--role must be admin, editor or viewer, not `{role}`"))?;
            let created = c.create_api_key(&name, role).await.map_err(api)?;
            if cli.json {
                cli.print(&created, String::new);
            } else {
                eprintln!(
                    "Created {} key {} (the secret is shown only this once):",
                    created.role, created.id
                );
                println!("{}", created.key);
            }
        }
        ApikeysCommand::Revoke { key } => {
            let id = ApiKeyId::parse(&key).map_err(|e| e.to_string())?;
            c.revoke_api_key(id).await.map_err(api)?;
            cli.print(&serde_json::json!({"revoked": id}), || {
                format!("Revoked key {id}.")
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn runs(cli: &Cli, command: RunsCommand) -> Res<ExitCode> {
    let c = &cli.client;
    match command {
        RunsCommand::Ls { pipeline, list } => {
            let id = cli.pipeline(&pipeline).await?;
            let page = c.list_runs(id, &page(&list)).await.map_err(api)?;
            cli.print(&page, || render::runs(&page));
        }
        RunsCommand::Show { run } => {
            let (pipeline, id) = cli.run(&run).await?;
            let found = c.get_run(pipeline, id).await.map_err(api)?;
            let progress = c.run_progress(pipeline, id).await.map_err(api)?;
            cli.print(
                &serde_json::json!({"run": found, "progress": progress}),
                || render::run(&found, &progress),
            );
        }
        RunsCommand::Files { run, list } => {
            let (pipeline, id) = cli.run(&run).await?;
            let files = c.run_files(pipeline, id, &page(&list)).await.map_err(api)?;
            cli.print(&files, || render::run_files(&files));
        }
        RunsCommand::Watch { run } => {
            let (pipeline, id) = cli.run(&run).await?;
            return follow::follow(c, pipeline, id, cli.json).await;
        }
        RunsCommand::Errors { run, csv, output } => {
            let (pipeline, id) = cli.run(&run).await?;
            let format = if csv {
                ExportFormat::Csv
            } else {
                ExportFormat::Json
            };
            match output {
                Some(path) => {
                    let mut file = tokio::fs::File::create(&path)
                        .await
                        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                    let bytes = c.write_errors(pipeline, id, format, &mut file).await;
                    let bytes = bytes.map_err(api)?;
                    eprintln!("Wrote {bytes} bytes to {}.", path.display());
                }
                None => {
                    let mut out = tokio::io::stdout();
                    c.write_errors(pipeline, id, format, &mut out)
                        .await
                        .map_err(api)?;
                }
            }
        }
        RunsCommand::Retry { run, follow } => {
            let (pipeline, id) = cli.run(&run).await?;
            let retry = c.retry_run(pipeline, id).await.map_err(api)?;
            if follow {
                if !cli.json {
                    eprintln!(
                        "Started retry {} (resuming from row {}).",
                        retry.id, retry.metadata.resume_from_row
                    );
                }
                return follow::follow(c, pipeline, retry.id, cli.json).await;
            }
            cli.print(&retry, || render::retry(&retry));
        }
        RunsCommand::Cancel { run } => {
            let (pipeline, id) = cli.run(&run).await?;
            let cancelled = c.cancel_run(pipeline, id).await.map_err(api)?;
            cli.print(&cancelled, || {
                format!("Run {} is {}.", cancelled.id, cancelled.status)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_outcome_is_its_exit_status() {
        assert_eq!(exit_status(RunStatus::Completed), ExitCode::SUCCESS);
        assert_eq!(
            exit_status(RunStatus::CompletedWithErrors),
            ExitCode::from(2)
        );
        assert_eq!(exit_status(RunStatus::Failed), ExitCode::FAILURE);
        assert_eq!(exit_status(RunStatus::Cancelled), ExitCode::FAILURE);
    }

    #[test]
    fn a_name_matches_exactly_one() {
        assert_eq!(one_of(vec![1], "pipeline", "a"), Ok(1));
        let none = one_of(Vec::<u8>::new(), "pipeline", "a").expect_err("none");
        assert!(none.contains("no pipeline is named `a`"), "{none}");
        let two = one_of(vec![1, 2], "pipeline", "a").expect_err("two");
        assert!(two.contains("more than one"), "{two}");
    }
}
