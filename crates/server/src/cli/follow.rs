//! Following a run to its end: on a terminal, an overall bar (rows
//! processed of the total, rows/s, ETA, failed and skipped rows) and one
//! bar per partition (indicatif) under the log lines as they arrive;
//! elsewhere (a pipe, a file, CI), plain progress lines every few seconds.
//! Both end with a summary; the exit status says how the run ended.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sluice_client::Client;
use sluice_client::domain::ids::{PipelineId, RunId};
use sluice_client::domain::progress::RunProgress;
use sluice_client::domain::run::LogEntry;
use sluice_client::domain::status::PartitionStatus;
use sluice_client::types::RunDto;

use super::render::{count, duration, name};
use super::{Res, api, exit_status};

/// How often the progress is read.
const POLL: Duration = Duration::from_millis(500);

/// How often a plain progress line is printed (and at every status change).
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Follows `run` until it ends; the exit status is its outcome's.
pub async fn follow(
    client: &Client,
    pipeline: PipelineId,
    run: RunId,
    json: bool,
) -> Res<ExitCode> {
    let mut view = if std::io::stderr().is_terminal() {
        View::Bars(Bars::new())
    } else {
        View::Plain(Plain::default())
    };
    let mut logged = 0;
    let mut last = None;
    let snapshots = client.watch(pipeline, run, POLL);
    let mut snapshots = std::pin::pin!(snapshots);
    while let Some(snapshot) = snapshots.next().await {
        let p = match snapshot {
            Ok(p) => p,
            Err(e) => {
                view.finish();
                return Err(api(e));
            }
        };
        for entry in p.log.iter().skip(logged) {
            view.log(entry);
        }
        logged = p.log.len();
        view.update(&p);
        last = Some(p);
    }
    view.finish();
    let progress = last.ok_or("the run's progress could not be read")?;
    let run = client.get_run(pipeline, run).await.map_err(api)?;
    if json {
        let text = serde_json::to_string_pretty(&run).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        println!("{}", summary(&run, &progress));
    }
    Ok(exit_status(run.status))
}

/// The last words on a run.
fn summary(run: &RunDto, p: &RunProgress) -> String {
    let mut out = format!(
        "Run {} {} in {}: {} of {} rows processed, {} loaded, {} skipped, {} failed.",
        run.id,
        run.status,
        duration(run.duration_ms),
        count(run.processed_rows),
        run.total_rows.map_or_else(|| "?".to_owned(), count),
        count(run.loaded_rows),
        count(run.skipped_rows),
        count(run.failed_rows),
    );
    if let Some(e) = &run.error {
        out.push_str(&format!("\nWhy: {e}"));
    }
    if run.failed_rows > 0 {
        if let Some(first) = p.validation_errors.first() {
            out.push_str(&format!(
                "\nFirst rejected row: row {}, column {}: {} ({:?}).",
                first.row, first.column, first.error, first.value
            ));
        }
        out.push_str(&format!(
            "\nEvery rejected row: sluice runs errors {} --csv -o errors.csv",
            run.id
        ));
    }
    if matches!(
        run.status,
        sluice_client::domain::status::RunStatus::Failed
            | sluice_client::domain::status::RunStatus::CompletedWithErrors
    ) {
        out.push_str(&format!(
            "\nRetry it (append and upsert resume): sluice runs retry {} --follow",
            run.id
        ));
    }
    out
}

/// "12 failed, 3 skipped, ETA 3m".
fn counters(p: &RunProgress) -> String {
    let mut parts = vec![
        format!("{} failed", count(p.failed_rows)),
        format!("{} skipped", count(p.skipped_rows)),
    ];
    if let Some(eta) = &p.eta {
        parts.push(format!("ETA {eta}"));
    }
    parts.join(", ")
}

fn log_line(e: &LogEntry) -> String {
    format!("{} [{}] {}", e.timestamp, name(&e.stage), e.message)
}

enum View {
    Bars(Bars),
    Plain(Plain),
}

impl View {
    fn log(&mut self, e: &LogEntry) {
        match self {
            Self::Bars(b) => b.multi.suspend(|| eprintln!("{}", log_line(e))),
            Self::Plain(_) => eprintln!("{}", log_line(e)),
        }
    }

    fn update(&mut self, p: &RunProgress) {
        match self {
            Self::Bars(b) => b.update(p),
            Self::Plain(l) => l.update(p),
        }
    }

    fn finish(&mut self) {
        if let Self::Bars(b) = self {
            b.finish();
        }
    }
}

/// The bars of a terminal.
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    partitions: Vec<ProgressBar>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("█▉▊▋▌▍▎▏ ")
}

impl Bars {
    fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(style(
            "{prefix:<10} [{bar:40.cyan/blue}] {human_pos}/{human_len} rows {percent:>3}% {per_sec:>14}  {msg}",
        ));
        overall.set_prefix("pending");
        overall.set_message("waiting for a worker");
        Self {
            multi,
            overall,
            partitions: Vec::new(),
        }
    }

    fn update(&mut self, p: &RunProgress) {
        self.overall.set_prefix(p.status.as_str().to_owned());
        if p.total_rows > 0 {
            self.overall.set_length(p.total_rows);
        }
        self.overall.set_position(p.processed_rows);
        self.overall.set_message(counters(p));
        while self.partitions.len() < p.partition_details.len() {
            let n = self.partitions.len();
            let bar = self.multi.add(ProgressBar::new(100));
            bar.set_style(style(
                "  partition {prefix:<3} [{bar:30.green/white}] {pos:>3}%  {msg}",
            ));
            bar.set_prefix((n + 1).to_string());
            self.partitions.push(bar);
        }
        for (bar, d) in self.partitions.iter().zip(&p.partition_details) {
            let percent = match d.status {
                PartitionStatus::Completed => 100,
                _ => u64::from(d.progress.unwrap_or(0)),
            };
            bar.set_position(percent);
            bar.set_message(format!("{} rows, {}", count(d.rows), d.status.as_str()));
        }
    }

    fn finish(&mut self) {
        for bar in &self.partitions {
            bar.abandon();
        }
        self.overall.abandon();
    }
}

/// Plain lines, for output that is not a terminal.
#[derive(Default)]
struct Plain {
    last: Option<(Instant, String)>,
}

impl Plain {
    fn update(&mut self, p: &RunProgress) {
        let status = p.status.as_str().to_owned();
        let due = match &self.last {
            None => true,
            Some((at, s)) => *s != status || at.elapsed() >= PLAIN_EVERY || p.status.is_terminal(),
        };
        if !due {
            return;
        }
        let percent = (p.processed_rows * 100)
            .checked_div(p.total_rows)
            .map_or_else(String::new, |v| format!(" ({v}%)"));
        eprintln!(
            "{status}: {} of {} rows{percent}, {}; partitions {} of {} completed",
            count(p.processed_rows),
            count(p.total_rows),
            counters(p),
            p.completed_partitions,
            p.partitions
        );
        self.last = Some((Instant::now(), status));
    }
}
