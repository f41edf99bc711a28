//! The benchmark's outputs: a table on stdout, a JSON file under
//! `target/bench/`, and the generated figures section of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::baseline::{self, Baseline};
use super::data::{DataSet, civil_from_days};
use super::latency::percentile;
use super::ledger::LedgerResults;
use super::peers::{Peer, PeerLoad, PeerSample};
use super::procfs::Cpu;
use super::{BaselineSample, LatencyResults, Results, RunSample, Scenario};
use crate::infra::pg::Postgres;
use crate::infra::{Res, root, state_dir};

/// The generated part of `docs/benchmarks.md` lies between these lines.
const BEGIN: &str = "<!-- bench:figures:begin (written by `cargo xtask bench`; edit outside) -->";
const END: &str = "<!-- bench:figures:end -->";

/// Targets of issue 14: (scenario, partitions judged (None = the best),
/// ratio against the scenario's baseline).
const RATIO_TARGETS: [(Scenario, Option<usize>, f64); 4] = [
    (Scenario::Append, Some(4), 1.0),
    (Scenario::Replace, None, 1.0),
    (Scenario::AppendKeyed, None, 0.8),
    (Scenario::Upsert, None, 1.5),
];
/// Sluice's rows/s at least this many times each peer's, same load, same run.
const PEER_TARGETS: [(Peer, f64); 2] = [(Peer::Pgloader, 20.0), (Peer::Dlt, 40.0)];
const RSS_TARGET_MIB: f64 = 128.0;
const RSS_GROWTH_TARGET: f64 = 0.10;
const P99_TARGET_MS: f64 = 5.0;
/// Loading from gzip within 10% of the plain file's rows/s.
const GZIP_TARGET: f64 = 0.9;
/// Peak RSS of the process choosing the new files among a million-file ledger.
const LEDGER_RSS_TARGET_MIB: f64 = 100.0;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v.get(n / 2).copied().unwrap_or(f64::NAN),
        n => {
            (v.get(n / 2 - 1).copied().unwrap_or(f64::NAN)
                + v.get(n / 2).copied().unwrap_or(f64::NAN))
                / 2.0
        }
    }
}

fn median_cpu(cpus: &[Cpu]) -> Cpu {
    Cpu {
        client: median(cpus.iter().map(|c| c.client).collect()),
        postgres: median(cpus.iter().map(|c| c.postgres).collect()),
        s3: median(cpus.iter().map(|c| c.s3).collect()),
        other: median(cpus.iter().map(|c| c.other).collect()),
        steal: median(cpus.iter().map(|c| c.steal).collect()),
    }
}

/// A summary line of the throughput table.
#[derive(Debug, Clone)]
struct Line {
    name: String,
    partitions: Option<usize>,
    rows: u64,
    seconds: f64,
    rows_per_s: f64,
    baseline: Option<(Baseline, f64)>,
    peak_rss_mib: Option<f64>,
    cpu: Cpu,
    extract_s: Option<f64>,
    duration_s: Option<f64>,
    samples: Vec<f64>,
}

impl Line {
    fn ratio(&self) -> Option<f64> {
        self.baseline.map(|(_, b)| self.rows_per_s / b)
    }
}

fn baseline_line(b: Baseline, v: &[BaselineSample]) -> Line {
    let seconds = median(v.iter().map(|s| s.seconds).collect());
    let rows = v.first().map_or(0, |s| s.rows);
    Line {
        name: format!("baseline {}", b.name()),
        partitions: None,
        rows,
        seconds,
        rows_per_s: rows as f64 / seconds,
        baseline: None,
        peak_rss_mib: None,
        cpu: median_cpu(&v.iter().map(|s| s.cpu).collect::<Vec<_>>()),
        extract_s: None,
        duration_s: None,
        samples: v.iter().map(|s| s.seconds).collect(),
    }
}

fn run_line(
    name: String,
    partitions: usize,
    v: &[RunSample],
    baseline: Option<(Baseline, f64)>,
) -> Line {
    let seconds = median(v.iter().map(|s| s.seconds).collect());
    let rows = v.first().map_or(0, |s| s.rows);
    let extract: Vec<f64> = v.iter().filter_map(|s| s.extract_seconds).collect();
    let duration: Vec<f64> = v
        .iter()
        .filter_map(|s| s.duration_ms)
        .map(|ms| ms as f64 / 1000.0)
        .collect();
    Line {
        name,
        partitions: Some(partitions),
        rows,
        seconds,
        rows_per_s: rows as f64 / seconds,
        baseline,
        peak_rss_mib: v.iter().filter_map(|s| s.peak_rss_mib).reduce(f64::max),
        cpu: median_cpu(&v.iter().map(|s| s.cpu).collect::<Vec<_>>()),
        extract_s: (!extract.is_empty()).then(|| median(extract)),
        duration_s: (!duration.is_empty()).then(|| median(duration)),
        samples: v.iter().map(|s| s.seconds).collect(),
    }
}

/// What the machine is.
fn machine(pg: &Postgres, prebuilt: bool) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("PRETTY_NAME=")
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let moto = std::fs::read_dir(state_dir().join("venv").join("lib"))
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|py| std::fs::read_dir(py.ok()?.path().join("site-packages")).ok())
        .and_then(|entries| {
            entries.filter_map(Result::ok).find_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_prefix("moto-")?
                    .strip_suffix(".dist-info")
                    .map(str::to_owned)
            })
        });
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--", "crates"]).is_empty();
    json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "memoryGiB": (mem_kib as f64 / 1_048_576.0 * 10.0).round() / 10.0,
        "os": os,
        "kernel": kernel,
        "postgres": baseline::sql(pg, "postgres", "SHOW server_version").unwrap_or_default(),
        "postgresSettings": "fsync=off, synchronous_commit=off, full_page_writes=off, shared_buffers=256MB (the private cluster of `cargo xtask`)",
        "s3Server": moto.map_or_else(|| "moto".to_owned(), |v| format!("moto {v}")),
        "sluiceCommit": if prebuilt {
            format!("a prebuilt binary (--sluice; workspace at {commit})")
        } else if dirty {
            format!("{commit} + uncommitted changes in crates/")
        } else {
            commit
        },
    })
}

/// The 1-minute load average (how busy the shared machine is).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// UTC `YYYY-MM-DD HH:MM:SS` and `YYYYMMDD-HHMMSS` of now.
fn now_utc() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    let s = secs % 86_400;
    let (hh, mm, ss) = (s / 3600, s % 3600 / 60, s % 60);
    (
        format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC"),
        format!("{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}"),
    )
}

fn f(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "–".to_owned(), |x| format!("{x:.digits$}"))
}

fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(us: Option<u64>) -> Option<f64> {
    us.map(|u| u as f64 / 1000.0)
}

/// The medians of the ledger part, in seconds and MiB.
#[derive(Debug, Clone)]
struct LedgerLine {
    known: u64,
    new: u64,
    seed_seconds: f64,
    /// Listing and selection together: the listing arrives page by page.
    select_seconds: f64,
    /// The process before the selection starts (runtime, pools, the spec).
    before_mib: f64,
    /// The whole process's peak.
    peak_mib: f64,
    /// The peak over the peak before the selection: what the listing's pages
    /// and the ledger lookups add.
    selection_mib: f64,
}

impl LedgerLine {
    fn new(l: &LedgerResults) -> Self {
        let m =
            |f: &dyn Fn(&Value) -> Option<f64>| median(l.samples.iter().filter_map(f).collect());
        Self {
            known: l.known,
            new: l.new,
            seed_seconds: l.seed_seconds,
            select_seconds: m(&|v| v["selectSeconds"].as_f64()),
            before_mib: m(&|v| v["peakBeforeMiB"].as_f64()),
            peak_mib: m(&|v| v["peakMiB"].as_f64()),
            selection_mib: m(&|v| Some(v["peakMiB"].as_f64()? - v["peakBeforeMiB"].as_f64()?)),
        }
    }
}

/// The report of one benchmark run.
pub struct Report {
    json: Value,
    lines: Vec<Line>,
    /// Per partition count: (partitions, plain append rows/s, gzip rows/s).
    gzip: Vec<(usize, f64, f64)>,
    memory: Vec<(u64, Option<f64>, f64)>,
    latency: Option<LatencyResults>,
    ledger: Option<LedgerLine>,
    peers: Vec<PeerLine>,
    peer_versions: Vec<(String, String)>,
    targets: Vec<(String, String, String, bool)>,
    header: Vec<String>,
}

impl Report {
    /// Summarises `results`.
    pub fn new(
        opts: &Value,
        d: &DataSet,
        results: &Results,
        elapsed: Duration,
        pg: &Postgres,
    ) -> Self {
        let mut lines = Vec::new();
        let mut baseline_rate = Vec::new();
        for (b, v) in &results.baselines {
            let l = baseline_line(*b, v);
            baseline_rate.push((*b, l.rows_per_s));
            lines.push(l);
        }
        for ((scenario, p), v) in &results.runs {
            let base = baseline_rate
                .iter()
                .find(|(b, _)| *b == scenario.baseline())
                .copied();
            lines.push(run_line(scenario.name().to_owned(), *p, v, base));
        }

        // Gzip against the plain file, with the same partitions, in this run.
        let rate = |name: &str, p: usize| {
            lines
                .iter()
                .find(|l| l.name == name && l.partitions == Some(p))
                .map(|l| l.rows_per_s)
        };
        let gzip: Vec<(usize, f64, f64)> = results
            .runs
            .iter()
            .filter(|((s, _), _)| *s == Scenario::AppendGzip)
            .filter_map(|((_, p), _)| {
                Some((
                    *p,
                    rate(Scenario::Append.name(), *p)?,
                    rate(Scenario::AppendGzip.name(), *p)?,
                ))
            })
            .collect();

        // Memory: the append at the file's size (4 partitions, as the big run) and the big run.
        let mut memory = Vec::new();
        if let Some((_, v)) = results
            .runs
            .iter()
            .find(|((s, p), _)| *s == Scenario::Append && *p == 4)
        {
            let peak = v.iter().filter_map(|s| s.peak_rss_mib).reduce(f64::max);
            memory.push((d.rows, peak, median(v.iter().map(|s| s.seconds).collect())));
        }
        if let Some(b) = &results.big {
            memory.push((b.rows, b.peak_rss_mib, b.seconds));
        }

        let mut targets = Vec::new();
        for (scenario, judged, want) in RATIO_TARGETS {
            let best = lines
                .iter()
                .filter(|l| l.name == scenario.name())
                .filter(|l| judged.is_none() || l.partitions == judged)
                .filter_map(|l| Some((l.ratio()?, l.partitions?)))
                .reduce(|a, b| if b.0 > a.0 { b } else { a });
            if let Some((r, p)) = best {
                let which = if judged.is_some() { "" } else { "best: " };
                targets.push((
                    format!(
                        "{}{} ≥ {want:.1}× {}",
                        scenario.name(),
                        judged.map_or_else(String::new, |p| format!(", {p} partitions,")),
                        scenario.baseline().name()
                    ),
                    format!("{r:.2}× ({which}{p} partitions)"),
                    format!("{want:.2}×"),
                    r >= want,
                ));
            }
        }
        let peers = peer_lines(&lines, &results.peers, d.invalid);
        for (peer, want) in PEER_TARGETS {
            for l in peers.iter().filter(|l| l.peer == peer) {
                if let Some(r) = l.ratio() {
                    targets.push((
                        format!("{} ≥ {want:.0}× {}'s rows/s", l.load.name(), peer.name()),
                        format!("{r:.1}× (Sluice {} partitions)", l.sluice_partitions),
                        format!("{want:.0}×"),
                        r >= want,
                    ));
                }
            }
        }
        for (p, plain, gz) in &gzip {
            let r = gz / plain;
            targets.push((
                format!("append from gzip ≥ {GZIP_TARGET}× the plain file, {p} partitions"),
                format!("{r:.2}×"),
                format!("{GZIP_TARGET:.2}×"),
                r >= GZIP_TARGET,
            ));
        }
        if let Some((rows, Some(peak), _)) = memory.first() {
            targets.push((
                format!(
                    "peak RSS at {} rows ≤ {RSS_TARGET_MIB} MiB",
                    thousands(*rows as f64)
                ),
                format!("{peak:.1} MiB"),
                format!("{RSS_TARGET_MIB:.0} MiB"),
                *peak <= RSS_TARGET_MIB,
            ));
            if let Some((big_rows, Some(big_peak), _)) = memory.get(1) {
                let growth = big_peak / peak - 1.0;
                targets.push((
                    format!(
                        "peak RSS at {} rows within 10% of it",
                        thousands(*big_rows as f64)
                    ),
                    format!("{big_peak:.1} MiB ({:+.1}%)", growth * 100.0),
                    format!("≤ {:.1} MiB", peak * (1.0 + RSS_GROWTH_TARGET)),
                    growth <= RSS_GROWTH_TARGET,
                ));
            }
        }
        if let Some(LatencyResults {
            in_process: loaded, ..
        }) = &results.latency
        {
            if let Some(p99) = ms(percentile(&loaded.sent_us, 0.99)) {
                targets.push((
                    format!(
                        "progress p99 ≤ {P99_TARGET_MS} ms at {:.0} req/s during a load",
                        loaded.target_rps
                    ),
                    format!("{p99:.2} ms"),
                    format!("{P99_TARGET_MS:.0} ms"),
                    p99 <= P99_TARGET_MS,
                ));
            }
        }

        let ledger = results.ledger.as_ref().map(LedgerLine::new);
        if let Some(l) = &ledger {
            targets.push((
                format!(
                    "choosing {} new files with {} in the ledger: peak RSS < {LEDGER_RSS_TARGET_MIB:.0} MiB",
                    l.new,
                    thousands(l.known as f64)
                ),
                format!("{:.1} MiB", l.peak_mib),
                format!("{LEDGER_RSS_TARGET_MIB:.0} MiB"),
                l.peak_mib < LEDGER_RSS_TARGET_MIB,
            ));
        }

        let (date, stamp) = now_utc();
        let machine = machine(pg, opts["prebuiltSluice"].as_bool().unwrap_or(false));
        let header = vec![
            format!(
                "Run {date}, {:.0} s in all, sluice {}",
                elapsed.as_secs_f64(),
                machine["sluiceCommit"].as_str().unwrap_or("")
            ),
            format!(
                "Command: `{}`",
                opts["command"].as_str().unwrap_or("cargo xtask bench")
            ),
            format!(
                "Machine: {} × {}, {} GiB RAM, {}, kernel {}; PostgreSQL {} ({}); S3 server {}",
                machine["cores"],
                machine["cpu"].as_str().unwrap_or(""),
                machine["memoryGiB"],
                machine["os"].as_str().unwrap_or(""),
                machine["kernel"].as_str().unwrap_or(""),
                machine["postgres"].as_str().unwrap_or(""),
                machine["postgresSettings"].as_str().unwrap_or(""),
                machine["s3Server"].as_str().unwrap_or(""),
            ),
            format!(
                "Data: {} rows, {:.1} MiB, seed {}: {} invalid rows, {} repeated ids; the clean file has {} rows; in S3 {}",
                thousands(d.rows as f64),
                d.full_bytes as f64 / 1_048_576.0,
                opts["seed"],
                d.invalid,
                d.duplicates,
                thousands(d.clean_rows as f64),
                match opts["objectRows"].as_u64() {
                    Some(n) if n > 0 && n < d.rows =>
                        format!("as objects of {} rows", thousands(n as f64)),
                    _ => "as one object".to_owned(),
                }
            ),
            format!(
                "Load average (1 min) at the start and the end: {} / {} (other work on the shared machine; see the `other` CPU column)",
                f(opts["loadAverageAtStart"].as_f64(), 2),
                f(load_average(), 2)
            ),
            format!(
                "Medians of {} repetitions; Sluice runs timed from the start request to the first progress answer with a terminal status, polled every {} ms",
                opts["reps"], opts["pollMs"]
            ),
        ];

        let line_json = |l: &Line| {
            json!({
                "name": l.name,
                "partitions": l.partitions,
                "rows": l.rows,
                "medianSeconds": l.seconds,
                "rowsPerSecond": l.rows_per_s,
                "baseline": l.baseline.map(|(b, _)| b.name()),
                "baselineRowsPerSecond": l.baseline.map(|(_, r)| r),
                "ratio": l.ratio(),
                "peakRssMiB": l.peak_rss_mib,
                "medianCpuSeconds": {"client": l.cpu.client, "postgres": l.cpu.postgres, "s3": l.cpu.s3, "other": l.cpu.other, "steal": l.cpu.steal},
                "medianExtractSeconds": l.extract_s,
                "medianSluiceDurationSeconds": l.duration_s,
                "sampleSeconds": l.samples,
            })
        };
        let run_json = |s: &RunSample| {
            json!({
                "seconds": s.seconds,
                "extractSeconds": s.extract_seconds,
                "durationMs": s.duration_ms,
                "rows": s.rows,
                "cpuSeconds": {"sluice": s.cpu.client, "postgres": s.cpu.postgres, "s3": s.cpu.s3, "other": s.cpu.other, "steal": s.cpu.steal},
                "peakRssMiB": s.peak_rss_mib,
                "idleRssMiB": s.idle_rss_mib,
                "progress": s.progress,
            })
        };
        let json = json!({
            "date": date,
            "stamp": stamp,
            "elapsedSeconds": elapsed.as_secs_f64(),
            "options": opts,
            "machine": machine,
            "data": {
                "rows": d.rows, "bytes": d.full_bytes, "invalid": d.invalid,
                "duplicates": d.duplicates, "cleanRows": d.clean_rows, "prefillRows": d.prefill_rows,
            },
            "baselines": results.baselines.iter().map(|(b, v)| json!({
                "name": b.name(),
                "what": b.describe(),
                "samples": v.iter().map(|s| json!({"seconds": s.seconds, "rows": s.rows,
                    "cpuSeconds": {"psql": s.cpu.client, "postgres": s.cpu.postgres, "other": s.cpu.other, "steal": s.cpu.steal}})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "summary": lines.iter().map(line_json).collect::<Vec<_>>(),
            "runs": results.runs.iter().map(|((s, p), v)| json!({
                "scenario": s.name(), "partitions": p, "workers": p,
                "samples": v.iter().map(run_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "gzip": gzip.iter().map(|(p, plain, gz)| json!({
                "partitions": p, "plainRowsPerSecond": plain, "gzipRowsPerSecond": gz, "ratio": gz / plain,
            })).collect::<Vec<_>>(),
            "memory": {
                "runs": memory.iter().map(|(rows, peak, secs)| json!({"rows": rows, "peakRssMiB": peak, "seconds": secs})).collect::<Vec<_>>(),
                "big": results.big.as_ref().map(run_json),
            },
            "latency": results.latency.as_ref().map(|l| json!({
                "duringLoadInProcessWorkers": l.in_process.summary(),
                "duringLoadSeparateWorkerProcess": l.separate.summary(),
                "idle": l.idle.summary(),
                "load": l.info,
            })),
            "ledger": results.ledger.as_ref().map(|l| json!({
                "knownFiles": l.known,
                "newFiles": l.new,
                "seedSeconds": l.seed_seconds,
                "samples": l.samples,
            })),
            "peers": {
                "versions": results.peer_versions.iter().map(|(k, v)| json!({"tool": k, "version": v})).collect::<Vec<_>>(),
                "summary": peers.iter().map(PeerLine::json).collect::<Vec<_>>(),
                "samples": results.peers.iter().map(|((p, l), v)| json!({
                    "peer": p.name(), "load": l.name(),
                    "samples": v.iter().map(|s| json!({
                        "seconds": s.seconds, "rows": s.rows, "tableRows": s.table_rows,
                        "rejected": s.rejected, "prefillUpdated": s.prefill_updated,
                        "peakRssMiB": s.peak_rss_mib,
                        "cpuSeconds": {"peer": s.cpu.client, "postgres": s.cpu.postgres, "other": s.cpu.other, "steal": s.cpu.steal},
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            },
            "targets": targets.iter().map(|(what, got, want, met)| json!({"target": what, "measured": got, "wanted": want, "met": met})).collect::<Vec<_>>(),
        });
        Self {
            json,
            lines,
            gzip,
            memory,
            latency: results.latency.clone(),
            ledger,
            peers,
            peer_versions: results.peer_versions.clone(),
            targets,
            header,
        }
    }

    /// The figures as Markdown (also what stdout shows).
    pub fn table(&self) -> String {
        let mut s = String::new();
        for h in &self.header {
            let _ = writeln!(s, "{h}  ");
        }
        s.push('\n');
        s.push_str(
            "| scenario | partitions | rows | median s | rows/s | baseline | baseline rows/s | ratio | peak RSS MiB | CPU s: loader / postgres / s3 / other |\n\
             |---|---:|---:|---:|---:|---|---:|---:|---:|---|\n",
        );
        for l in &self.lines {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {:.1} / {:.1} / {:.1} / {:.1} |",
                l.name,
                l.partitions
                    .map_or_else(|| "–".to_owned(), |p| p.to_string()),
                thousands(l.rows as f64),
                l.seconds,
                thousands(l.rows_per_s),
                l.baseline.map_or("–", |(b, _)| b.name()),
                l.baseline
                    .map_or_else(|| "–".to_owned(), |(_, r)| thousands(r)),
                f(l.ratio(), 2),
                f(l.peak_rss_mib, 1),
                l.cpu.client,
                l.cpu.postgres,
                l.cpu.s3,
                l.cpu.other,
            );
        }
        s.push_str(
            "\nrows/s: source rows (Sluice) or clean rows (baselines) over the median time. \
             ratio: median Sluice rows/s over median baseline rows/s. \
             CPU: median CPU seconds per measurement of the loader (sluice, or psql for a baseline), \
             PostgreSQL (all its processes), the S3 server, and everything else on the machine (noise; 2 cores = 2 CPU s per second).\n",
        );
        let steal: f64 = self.lines.iter().map(|l| l.cpu.steal).sum();
        let wall: f64 = self.lines.iter().map(|l| l.seconds).sum();
        if wall > 0.0 {
            let _ = writeln!(
                s,
                "\nHypervisor steal time during the median measurements: {:.1} CPU s over {:.0} s of wall time.",
                steal, wall
            );
        }
        let extract: Vec<String> = self
            .lines
            .iter()
            .filter_map(|l| {
                Some(format!(
                    "{} {}p {:.2} s (Sluice durationMs {} s)",
                    l.name,
                    l.partitions?,
                    l.extract_s?,
                    f(l.duration_s, 2)
                ))
            })
            .collect();
        if !extract.is_empty() {
            let _ = writeln!(
                s,
                "\nUntil the run left `pending` (extraction: list + count rows): {}.",
                extract.join("; ")
            );
        }
        if !self.gzip.is_empty() {
            s.push_str("\n| append from the same objects gzip-compressed | plain rows/s | gzip rows/s | gzip / plain |\n|---|---:|---:|---:|\n");
            for (p, plain, gz) in &self.gzip {
                let _ = writeln!(
                    s,
                    "| {p} partitions | {} | {} | {:.2} |",
                    thousands(*plain),
                    thousands(*gz),
                    gz / plain
                );
            }
        }
        if !self.memory.is_empty() {
            s.push_str("\n| memory: append, 4 partitions | seconds | rows/s | peak RSS MiB |\n|---|---:|---:|---:|\n");
            for (rows, peak, secs) in &self.memory {
                let _ = writeln!(
                    s,
                    "| {} rows | {secs:.1} | {} | {} |",
                    thousands(*rows as f64),
                    thousands(*rows as f64 / secs),
                    f(*peak, 1)
                );
            }
        }
        if let Some(l) = &self.latency {
            let _ = write!(
                s,
                "\n| progress latency, {} req/s offered on {} keep-alive connections | samples | achieved req/s | p50 ms | p90 ms | p99 ms | max ms | p99 from schedule ms |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
                l.in_process.target_rps, l.info["connections"]
            );
            let rows = thousands(l.info["rows"].as_f64().unwrap_or(0.0));
            for (what, load) in [
                (
                    format!("while loading {rows} rows, 4 workers inside `sluice serve` (default)"),
                    &l.in_process,
                ),
                (
                    format!("while loading {rows} rows, 4 workers in a separate `sluice worker`"),
                    &l.separate,
                ),
                ("idle (after the run, autovacuum done)".to_owned(), &l.idle),
            ] {
                let _ = writeln!(
                    s,
                    "| {what} | {} | {:.0} | {} | {} | {} | {} | {} |",
                    load.sent_us.len(),
                    load.achieved_rps(),
                    f(ms(percentile(&load.sent_us, 0.5)), 2),
                    f(ms(percentile(&load.sent_us, 0.9)), 2),
                    f(ms(percentile(&load.sent_us, 0.99)), 2),
                    f(ms(load.sent_us.last().copied()), 2),
                    f(ms(percentile(&load.due_us, 0.99)), 2),
                );
            }
            for (what, load) in [
                ("in-process", &l.in_process),
                ("separate-worker", &l.separate),
            ] {
                if load.saw_terminal {
                    let _ = writeln!(
                        s,
                        "\nThe {what} run finished before the load window ended: {:.1} s of load while it ran.",
                        load.seconds
                    );
                }
            }
            let errors = l.in_process.errors + l.separate.errors + l.idle.errors;
            if errors > 0 {
                let _ = writeln!(s, "\n{errors} requests failed.");
            }
        }
        if let Some(l) = &self.ledger {
            let _ = write!(
                s,
                "\n| ledger: choosing the new files of a listing | ledger files | listed files | chosen | median s | peak RSS MiB | before the selection MiB | the selection adds MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n\
                 | `choose_files` over the PostgreSQL ledger, in a process of its own, the listing arriving in pages of 1,000 | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} |\n\
                 \nThe ledger was seeded by SQL in {:.1} s.\n",
                thousands(l.known as f64),
                thousands((l.known + l.new) as f64),
                l.new,
                l.select_seconds,
                l.peak_mib,
                l.before_mib,
                l.selection_mib,
                l.seed_seconds,
            );
        }
        if !self.peers.is_empty() {
            let versions: Vec<String> = self.peer_versions.iter().map(|(_, v)| v.clone()).collect();
            let _ = write!(
                s,
                "\n| peers: the same file into the same PostgreSQL ({}) | median s | rows/s | Sluice rows/s | Sluice / peer | peak RSS MiB | invalid rows rejected | rows in the table | CPU s: peer / postgres / other |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
                versions.join("; ")
            );
            for l in &self.peers {
                let _ = writeln!(
                    s,
                    "| {} {} | {:.2} | {} | {} | {} | {} | {} of {} | {} | {:.1} / {:.1} / {:.1} |",
                    l.peer.name(),
                    l.load.name(),
                    l.seconds,
                    thousands(l.rows_per_s),
                    l.sluice.map_or_else(|| "–".to_owned(), thousands),
                    l.ratio()
                        .map_or_else(|| "–".to_owned(), |r| format!("{r:.1}×")),
                    f(l.peak_rss_mib, 1),
                    l.rejected,
                    l.invalid,
                    thousands(l.table_rows as f64),
                    l.cpu.client,
                    l.cpu.postgres,
                    l.cpu.other,
                );
            }
            s.push_str(
                "\nPeers' rows/s: source rows over the median wall time of the tool's process; Sluice rows/s: the same scenario with the most partitions measured, from this run. \
                 Rejected: an append's rows missing from the table; an upsert's invalid rows whose bad e-mail is not in the table.\n",
            );
        }
        if !self.targets.is_empty() {
            s.push_str("\n| target | measured | wanted | met |\n|---|---:|---:|---|\n");
            for (what, got, want, met) in &self.targets {
                let _ = writeln!(
                    s,
                    "| {what} | {got} | {want} | {} |",
                    if *met { "yes" } else { "**no**" }
                );
            }
        }
        s
    }

    /// Writes `results-<stamp>.json` and `latest.json` under `dir`.
    pub fn write_json(&self, dir: &Path) -> Res<PathBuf> {
        let text = serde_json::to_string_pretty(&self.json).map_err(|e| e.to_string())?;
        let stamp = self.json["stamp"].as_str().unwrap_or("now");
        let path = dir.join(format!("results-{stamp}.json"));
        std::fs::write(&path, &text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        std::fs::write(dir.join("latest.json"), &text).map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// Replaces the generated section of `doc` (appending it when missing).
    pub fn update_docs(&self, doc: &Path) -> Res<()> {
        let current = std::fs::read_to_string(doc).unwrap_or_else(|_| "# Benchmarks\n\n".into());
        let updated = splice(&current, &self.table());
        std::fs::write(doc, updated).map_err(|e| format!("cannot write {}: {e}", doc.display()))
    }
}

/// `doc` with the text between the markers replaced by `figures`; the
/// hand-written rest is kept as it is.
fn splice(doc: &str, figures: &str) -> String {
    let section = format!("{BEGIN}\n\n{figures}\n{END}");
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(a), Some(b)) if a < b => format!(
            "{}{section}{}",
            doc.get(..a).unwrap_or(""),
            doc.get(b + END.len()..).unwrap_or("")
        ),
        _ => format!("{}\n\n## Latest figures\n\n{section}\n", doc.trim_end()),
    }
}

/// A summary line of the peers table.
#[derive(Debug, Clone)]
struct PeerLine {
    peer: Peer,
    load: PeerLoad,
    seconds: f64,
    rows_per_s: f64,
    peak_rss_mib: Option<f64>,
    rejected: u64,
    invalid: u64,
    table_rows: u64,
    prefill_updated: Option<bool>,
    cpu: Cpu,
    /// Sluice's rows/s for the same load, and with how many partitions.
    sluice: Option<f64>,
    sluice_partitions: usize,
}

impl PeerLine {
    fn ratio(&self) -> Option<f64> {
        self.sluice.map(|s| s / self.rows_per_s)
    }

    fn json(&self) -> Value {
        json!({
            "peer": self.peer.name(),
            "load": self.load.name(),
            "medianSeconds": self.seconds,
            "rowsPerSecond": self.rows_per_s,
            "peakRssMiB": self.peak_rss_mib,
            "rejected": self.rejected,
            "invalidRows": self.invalid,
            "tableRows": self.table_rows,
            "prefillUpdated": self.prefill_updated,
            "medianCpuSeconds": {"peer": self.cpu.client, "postgres": self.cpu.postgres, "other": self.cpu.other},
            "sluiceRowsPerSecond": self.sluice,
            "sluicePartitions": self.sluice_partitions,
            "sluiceOverPeer": self.ratio(),
        })
    }
}

/// The peers' medians beside Sluice's line for the same load (the most
/// partitions measured).
fn peer_lines(
    lines: &[Line],
    peers: &[((Peer, PeerLoad), Vec<PeerSample>)],
    invalid: u64,
) -> Vec<PeerLine> {
    peers
        .iter()
        .map(|((peer, load), v)| {
            let scenario = match load {
                PeerLoad::Append => Scenario::Append,
                PeerLoad::Upsert => Scenario::Upsert,
            };
            let sluice = lines
                .iter()
                .filter(|l| l.name == scenario.name())
                .filter_map(|l| Some((l.partitions?, l.rows_per_s)))
                .max_by_key(|(p, _)| *p);
            let seconds = median(v.iter().map(|s| s.seconds).collect());
            let rows = v.first().map_or(0, |s| s.rows);
            let median_u64 = |f: fn(&PeerSample) -> u64| {
                median(v.iter().map(|s| f(s) as f64).collect()).round() as u64
            };
            PeerLine {
                peer: *peer,
                load: *load,
                seconds,
                rows_per_s: rows as f64 / seconds,
                peak_rss_mib: v.iter().filter_map(|s| s.peak_rss_mib).reduce(f64::max),
                rejected: median_u64(|s| s.rejected),
                invalid,
                table_rows: median_u64(|s| s.table_rows),
                prefill_updated: v
                    .iter()
                    .map(|s| s.prefill_updated)
                    .reduce(|a, b| Some(a? && b?))
                    .flatten(),
                cpu: median_cpu(&v.iter().map(|s| s.cpu).collect::<Vec<_>>()),
                sluice: sluice.map(|(_, r)| r),
                sluice_partitions: sluice.map_or(0, |(p, _)| p),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_keeps_the_hand_written_parts() {
        let doc = format!("# B\n\nintro\n\n{BEGIN}\nold\n{END}\n\n## Analysis\ntext\n");
        let out = splice(&doc, "new figures\n");
        assert_eq!(
            out,
            format!("# B\n\nintro\n\n{BEGIN}\n\nnew figures\n\n{END}\n\n## Analysis\ntext\n")
        );
        assert_eq!(splice(&out, "new figures\n"), out, "idempotent");
        let fresh = splice("# B\n", "x\n");
        assert!(fresh.starts_with("# B\n\n## Latest figures\n\n") && fresh.contains(END));
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
