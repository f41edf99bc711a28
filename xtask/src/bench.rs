//! `cargo xtask bench`: Sluice's throughput against hand-written `COPY`
//! baselines, its memory, and the latency of its progress endpoint.
//!
//! The machine is shared and noisy, so nothing here is a timed test: every
//! throughput figure is a ratio against a baseline measured in the same run
//! on the same PostgreSQL, taken as medians over repetitions that interleave
//! baselines and Sluice (so a burst of noise hits both). Each Sluice
//! measurement gets a fresh `sluice serve` process (its `VmHWM` is that
//! measurement's peak RSS) and a fresh database.

mod baseline;
mod data;
mod http;
mod latency;
mod ledger;
mod peers;
mod procfs;
mod report;
mod server;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use self::baseline::Baseline;
use self::data::DataSet;
use self::http::{Body, Conn};
use self::procfs::{Cpu, CpuMeter};
use self::server::{Api, Sluice, is_terminal};
use crate::infra::moto::Moto;
use crate::infra::pg::Postgres;
use crate::infra::{Res, root};

const USAGE: &str = "usage: cargo xtask bench [options]

  --rows N             rows of the generated customers file (default 1000000)
  --reps N             repetitions of every measurement, at least 3 (default 3)
  --partitions LIST    partition counts to measure (default 1,4)
  --scenarios LIST     among append,append_keyed,upsert,replace,append_gzip
                       (default: all; `none` leaves only the memory and latency parts)
  --seed N             data generator seed (default 42)
  --object-rows N      rows per S3 object the file is uploaded as (default 100000;
                       0 = one object; see docs/benchmarks.md for why)
  --big / --no-big     force / skip the memory run at --big-rows
                       (default: run it when --rows >= 1000000)
  --big-rows N         rows of the memory run (default 10000000)
  --latency-seconds N  length of the progress-latency load (default 20; 0 skips it)
  --rps N              offered rate of that load (default 200)
  --poll-ms N          progress polling interval while timing a run (default 25)
  --ledger-files N     files in the file ledger of the ledger part, which times
                       choosing the 10 new files of a listing of N + 10 and
                       measures that process's peak RSS (default 1000000; 0 skips it)
  --peers              also load the same file with pgloader and dlt (append and
                       upsert, installing them when missing) and report Sluice's
                       rows/s as ratios against theirs
  --sluice PATH        measure this `sluice` binary instead of building one
                       (cargo build --release -p sluice-server)
  --no-docs            do not rewrite the figures section of docs/benchmarks.md";

/// Options of one benchmark run.
#[derive(Debug, Clone)]
struct Opts {
    rows: u64,
    reps: usize,
    partitions: Vec<usize>,
    scenarios: Vec<Scenario>,
    seed: u64,
    big: Option<bool>,
    big_rows: u64,
    latency_seconds: u64,
    rps: f64,
    poll_ms: u64,
    docs: bool,
    sluice: Option<PathBuf>,
    object_rows: u64,
    ledger_files: u64,
    peers: bool,
}

impl Opts {
    fn parse(args: &[String]) -> Res<Self> {
        let mut o = Self {
            rows: 1_000_000,
            reps: 3,
            partitions: vec![1, 4],
            scenarios: Scenario::ALL.to_vec(),
            seed: 42,
            big: None,
            big_rows: 10_000_000,
            latency_seconds: 20,
            rps: 200.0,
            poll_ms: 25,
            docs: true,
            sluice: None,
            object_rows: 100_000,
            ledger_files: 1_000_000,
            peers: false,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
            };
            let number = |name: &str, v: String| {
                v.replace('_', "")
                    .parse::<u64>()
                    .map_err(|_| format!("{name}: `{v}` is not a whole number"))
            };
            match arg.as_str() {
                "--rows" => o.rows = number("--rows", value("--rows")?)?,
                "--reps" => {
                    o.reps = usize::try_from(number("--reps", value("--reps")?)?).unwrap_or(3)
                }
                "--seed" => o.seed = number("--seed", value("--seed")?)?,
                "--object-rows" => {
                    o.object_rows = number("--object-rows", value("--object-rows")?)?
                }
                "--ledger-files" => {
                    o.ledger_files = number("--ledger-files", value("--ledger-files")?)?
                }
                "--big-rows" => o.big_rows = number("--big-rows", value("--big-rows")?)?,
                "--latency-seconds" => {
                    o.latency_seconds = number("--latency-seconds", value("--latency-seconds")?)?;
                }
                "--rps" => o.rps = number("--rps", value("--rps")?)? as f64,
                "--poll-ms" => o.poll_ms = number("--poll-ms", value("--poll-ms")?)?.max(1),
                "--partitions" => {
                    o.partitions = value("--partitions")?
                        .split(',')
                        .map(|p| {
                            p.trim()
                                .parse::<usize>()
                                .ok()
                                .filter(|n| (1..=64).contains(n))
                                .ok_or_else(|| format!("--partitions: `{p}` is not 1..=64"))
                        })
                        .collect::<Res<_>>()?;
                }
                "--scenarios" => {
                    let list = value("--scenarios")?;
                    // `none`: only the memory and latency parts.
                    o.scenarios = list
                        .split(',')
                        .filter(|s| s.trim() != "none")
                        .map(|s| {
                            Scenario::ALL
                                .iter()
                                .copied()
                                .find(|k| k.name() == s.trim())
                                .ok_or_else(|| format!("--scenarios: unknown `{s}`\n\n{USAGE}"))
                        })
                        .collect::<Res<_>>()?;
                }
                "--big" => o.big = Some(true),
                "--no-big" => o.big = Some(false),
                "--no-docs" => o.docs = false,
                "--peers" => o.peers = true,
                "--sluice" => o.sluice = Some(PathBuf::from(value("--sluice")?)),
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
            }
        }
        if o.reps < 3 {
            return Err("--reps must be at least 3 (figures are medians of repetitions)".into());
        }
        if o.rows < 1_000 {
            return Err("--rows must be at least 1000".into());
        }
        Ok(o)
    }

    fn run_big(&self) -> bool {
        self.big.unwrap_or(self.rows >= 1_000_000)
    }
}

/// What Sluice is asked to do in a throughput measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `append` without key columns: validated rows straight into the table
    /// with COPY (duplicates of an id are loaded too).
    Append,
    /// `append` with key `id`: a repeated id is skipped (staging + ON CONFLICT DO NOTHING semantics).
    AppendKeyed,
    /// `upsert` on key `id`, into a table already holding 50% of the ids.
    Upsert,
    /// `replace` without key columns: a shadow table swapped in at the end.
    Replace,
    /// `append` without key columns from the same objects gzip-compressed
    /// (`.csv.gz`, decompressed while read): its ratio to `append` with the
    /// same partitions is what decompression costs.
    AppendGzip,
}

impl Scenario {
    const ALL: [Self; 5] = [
        Self::Append,
        Self::AppendKeyed,
        Self::Upsert,
        Self::Replace,
        Self::AppendGzip,
    ];

    /// Its name in tables and options.
    pub fn name(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::AppendKeyed => "append_keyed",
            Self::Upsert => "upsert",
            Self::Replace => "replace",
            Self::AppendGzip => "append_gzip",
        }
    }

    fn strategy(self) -> &'static str {
        match self {
            Self::Append | Self::AppendKeyed | Self::AppendGzip => "append",
            Self::Upsert => "upsert",
            Self::Replace => "replace",
        }
    }

    fn keyed(self) -> bool {
        matches!(self, Self::AppendKeyed | Self::Upsert)
    }

    /// Where its objects are, and the pattern that picks them.
    fn source(self) -> (&'static str, &'static str) {
        match self {
            Self::AppendGzip => (GZIP_PREFIX, "*.csv.gz"),
            _ => ("full/", "*.csv"),
        }
    }

    /// The baseline its ratio is taken against.
    pub fn baseline(self) -> Baseline {
        match self {
            Self::Append | Self::Replace | Self::AppendGzip => Baseline::Copy,
            Self::AppendKeyed => Baseline::CopyPk,
            Self::Upsert => Baseline::Upsert,
        }
    }
}

/// One timed Sluice run.
#[derive(Debug, Clone)]
pub struct RunSample {
    /// From the start request to the first progress answer with a terminal status.
    pub seconds: f64,
    /// When the run left `pending` (extraction done), from the start request.
    pub extract_seconds: Option<f64>,
    /// Sluice's own `durationMs`.
    pub duration_ms: Option<u64>,
    /// Source rows.
    pub rows: u64,
    /// CPU seconds of sluice, PostgreSQL and the S3 server during the run.
    pub cpu: Cpu,
    /// `VmHWM` of the process after the run.
    pub peak_rss_mib: Option<f64>,
    /// `VmRSS` when it was ready, before the run.
    pub idle_rss_mib: Option<f64>,
    /// The final progress counters.
    pub progress: Value,
}

/// One timed baseline.
#[derive(Debug, Clone)]
pub struct BaselineSample {
    /// psql's wall time.
    pub seconds: f64,
    /// Rows it loaded (the clean rows).
    pub rows: u64,
    /// CPU seconds of psql, PostgreSQL (and the idle S3 server).
    pub cpu: Cpu,
}

/// Everything the run measured, for the report.
#[derive(Debug, Default)]
pub struct Results {
    /// Baseline samples per baseline.
    pub baselines: Vec<(Baseline, Vec<BaselineSample>)>,
    /// Sluice samples per (scenario, partitions).
    pub runs: Vec<((Scenario, usize), Vec<RunSample>)>,
    /// The memory run at the big size.
    pub big: Option<RunSample>,
    /// The progress latency.
    pub latency: Option<LatencyResults>,
    /// The ledger part.
    pub ledger: Option<ledger::LedgerResults>,
    /// The peers' samples per (peer, load), with `--peers`.
    pub peers: Vec<((peers::Peer, peers::PeerLoad), Vec<peers::PeerSample>)>,
    /// The peers' versions.
    pub peer_versions: Vec<(String, String)>,
}

/// Appends `value` to the list kept for `key`.
fn push<K: PartialEq, V>(list: &mut Vec<(K, Vec<V>)>, key: K, value: V) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some((_, values)) => values.push(value),
        None => list.push((key, vec![value])),
    }
}

/// The bucket every object goes to.
const BUCKET: &str = "sluice-bench";

/// Shared state of one benchmark run.
struct Bench {
    opts: Opts,
    pg: Postgres,
    moto: Moto,
    bin: PathBuf,
    out: PathBuf,
    meter: CpuMeter,
    interrupted: Arc<AtomicBool>,
    seq: usize,
    peers: Option<peers::Peers>,
}

fn check_interrupt(flag: &AtomicBool) -> Res<()> {
    if flag.load(Ordering::SeqCst) {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

/// Where the gzip-compressed copies of the objects go.
const GZIP_PREFIX: &str = "gzip/";

/// The expected outcome of loading a data set with a scenario.
fn expected_rows(scenario: Scenario, d: &DataSet) -> u64 {
    match scenario {
        Scenario::Append | Scenario::Replace | Scenario::AppendGzip => d.rows - d.invalid,
        Scenario::AppendKeyed | Scenario::Upsert => d.clean_rows,
    }
}

fn schema() -> Value {
    json!({"columns": [
        {"name": "id", "type": "integer", "required": true},
        {"name": "email", "type": "email", "required": true},
        {"name": "name", "type": "string", "maxLength": 200},
        {"name": "age", "type": "integer"},
        {"name": "signup_date", "type": "date"},
        {"name": "score", "type": "number"}
    ]})
}

impl Bench {
    fn next_db(&mut self, what: &str) -> String {
        self.seq += 1;
        format!("bench_{}_{what}", self.seq)
    }

    fn s3_put(&self, key: &str, file: Option<&Path>) -> Res<()> {
        let mut conn = Conn::new(&format!("127.0.0.1:{}", self.moto.port))
            .with_timeout(Duration::from_secs(600));
        let body = file.map_or(Body::Empty, Body::File);
        let path = if key.is_empty() {
            format!("/{BUCKET}")
        } else {
            format!("/{BUCKET}/{key}")
        };
        let r = conn.request("PUT", &path, &[], &body)?;
        if r.status / 100 == 2 {
            Ok(())
        } else {
            Err(format!("S3 PUT {path} answered {}: {}", r.status, r.text()))
        }
    }

    /// The objects `d`'s file is uploaded as: (name, local file). Split
    /// into `--object-rows` pieces under `target/bench/data/<dir>`, because
    /// moto copies a whole object on every ranged GET (see docs/benchmarks.md).
    fn objects(&self, d: &DataSet, dir: &str) -> Res<Vec<(String, PathBuf)>> {
        let n = self.opts.object_rows;
        if n == 0 || d.rows <= n {
            return Ok(vec![("customers.csv".to_owned(), d.full.clone())]);
        }
        let parts = data::split(&d.full, &self.out.join("data").join(dir), n)?;
        Ok(parts
            .into_iter()
            .map(|p| {
                let name = p
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (name, p)
            })
            .collect())
    }

    /// Uploads `objects` under `prefix`; returns their keys.
    fn put_all(&self, prefix: &str, objects: &[(String, PathBuf)]) -> Res<Vec<String>> {
        objects
            .iter()
            .map(|(name, path)| {
                let key = format!("{prefix}{name}");
                self.s3_put(&key, Some(path)).map(|()| key)
            })
            .collect()
    }

    fn s3_delete(&self, key: &str) {
        let mut conn = Conn::new(&format!("127.0.0.1:{}", self.moto.port));
        let _ = conn.request("DELETE", &format!("/{BUCKET}/{key}"), &[], &Body::Empty);
    }

    /// One timed baseline in a fresh database.
    fn baseline(&mut self, b: Baseline, d: &DataSet) -> Res<BaselineSample> {
        let (Some(clean), Some(prefill)) = (d.clean.as_deref(), d.prefill.as_deref()) else {
            return Err("the baselines need the clean and prefill files".into());
        };
        let db = self.next_db(b.name());
        baseline::fresh_database(&self.pg, &db)?;
        b.prepare(&self.pg, &db, prefill)?;
        baseline::checkpoint(&self.pg, &db)?;
        let meter = CpuMeter {
            client: None,
            ..self.meter
        };
        let before = meter.snapshot();
        let elapsed = baseline::timed_script(&self.pg, &db, &b.script(clean))?;
        // psql has exited; give its backend a moment to exit and be reaped,
        // so its CPU time is in the postmaster's counters.
        std::thread::sleep(Duration::from_millis(200));
        let cpu = meter.between(&before, &meter.snapshot());
        let loaded = baseline::count(&self.pg, &db, "SELECT count(*) FROM customers")?;
        if loaded != d.clean_rows {
            return Err(format!(
                "baseline {} left {loaded} rows, expected {}",
                b.name(),
                d.clean_rows
            ));
        }
        if b == Baseline::Upsert {
            self.check_prefill_updated(&db)?;
        }
        baseline::drop_database(&self.pg, &db)?;
        Ok(BaselineSample {
            seconds: elapsed.as_secs_f64(),
            rows: d.clean_rows,
            cpu,
        })
    }

    fn check_prefill_updated(&self, db: &str) -> Res<()> {
        let stale = baseline::count(
            &self.pg,
            db,
            &format!(
                "SELECT count(*) FROM customers WHERE score = {}",
                data::PREFILL_SCORE
            ),
        )?;
        if stale == 0 {
            Ok(())
        } else {
            Err(format!(
                "{stale} prefilled rows were not updated by the upsert"
            ))
        }
    }

    /// One timed Sluice run of `scenario` over the objects under `prefix`
    /// (holding `copies` copies of `d`'s file), in a fresh database and a
    /// fresh process.
    fn sluice_run(
        &mut self,
        scenario: Scenario,
        partitions: usize,
        prefix: &str,
        d: &DataSet,
    ) -> Res<RunSample> {
        let tag = format!("{}_{partitions}p", scenario.name());
        let db = self.next_db(&tag);
        baseline::fresh_database(&self.pg, &db)?;
        if scenario == Scenario::Upsert {
            let prefill = d
                .prefill
                .as_deref()
                .ok_or("the upsert needs the prefill file")?;
            baseline::prefill(&self.pg, &db, "bigint", prefill)?;
        }
        let log = self.out.join("logs").join(format!("{db}.log"));
        let server = Sluice::start(&self.bin, &self.pg.url(&db), partitions, log)?;
        let mut api = server.api();
        let connector = api.s3_connector(BUCKET, &self.moto.endpoint())?;
        let keys: Vec<&str> = if scenario.keyed() { vec!["id"] } else { vec![] };
        let pipeline = api.pipeline(&json!({
            "name": format!("bench {tag}"),
            "connectorId": connector,
            "source": {"prefix": prefix, "pattern": scenario.source().1, "format": "csv", "csv": {"header": true}},
            "schema": schema(),
            "destination": {"table": "customers", "keyColumns": keys},
            "loadStrategy": scenario.strategy(),
            "partitions": partitions,
        }))?;
        baseline::checkpoint(&self.pg, &db)?;
        let idle_rss_mib = server.rss_mib();
        let meter = CpuMeter {
            client: Some(server.pid()),
            ..self.meter
        };
        let before = meter.snapshot();
        let (sample_time, extract, progress) = self.time_run(&mut api, &pipeline)?;
        let cpu = meter.between(&before, &meter.snapshot());
        let peak_rss_mib = server.peak_rss_mib();
        // Close the keep-alive connection first: a graceful stop waits for
        // open connections (actix's keep-alive is 5 s).
        drop(api);
        drop(server);

        let status = progress["status"].as_str().unwrap_or_default();
        let want_status = if d.invalid > 0 {
            "completed_with_errors"
        } else {
            "completed"
        };
        let got = |f: &str| progress[f].as_u64().unwrap_or(u64::MAX);
        if status != want_status
            || got("totalRows") != d.rows
            || got("processedRows") != d.rows
            || got("failedRows") != d.invalid
        {
            return Err(format!(
                "{tag}: unexpected outcome (want {want_status}, {} rows, {} failed): {progress}",
                d.rows, d.invalid
            ));
        }
        let loaded = baseline::count(&self.pg, &db, "SELECT count(*) FROM customers")?;
        if loaded != expected_rows(scenario, d) {
            return Err(format!(
                "{tag}: the table holds {loaded} rows, expected {}",
                expected_rows(scenario, d)
            ));
        }
        if scenario == Scenario::Upsert {
            self.check_prefill_updated(&db)?;
        }
        baseline::drop_database(&self.pg, &db)?;
        Ok(RunSample {
            seconds: sample_time,
            extract_seconds: extract,
            duration_ms: progress["durationMs"].as_u64(),
            rows: d.rows,
            cpu,
            peak_rss_mib,
            idle_rss_mib,
            progress: json!({
                "status": progress["status"],
                "totalRows": progress["totalRows"],
                "processedRows": progress["processedRows"],
                "failedRows": progress["failedRows"],
                "skippedRows": progress["skippedRows"],
                "durationMs": progress["durationMs"],
            }),
        })
    }

    /// Starts a run and polls its progress every `poll_ms` until it is
    /// terminal: (seconds, seconds until it left `pending`, final progress).
    fn time_run(&self, api: &mut Api, pipeline: &str) -> Res<(f64, Option<f64>, Value)> {
        let poll = Duration::from_millis(self.opts.poll_ms);
        let start = Instant::now();
        let run = api.start_run(pipeline)?;
        let mut extract = None;
        loop {
            check_interrupt(&self.interrupted)?;
            let p = api.progress(pipeline, &run)?;
            let status = p["status"].as_str().unwrap_or_default();
            if extract.is_none() && status != "pending" {
                extract = Some(start.elapsed().as_secs_f64());
            }
            if is_terminal(status) {
                return Ok((start.elapsed().as_secs_f64(), extract, p));
            }
            if start.elapsed() > Duration::from_secs(3_600) {
                return Err(format!("run {run} not finished after an hour: {p}"));
            }
            std::thread::sleep(poll);
        }
    }

    /// Waits (up to 2 minutes) until no autovacuum worker runs.
    fn wait_for_autovacuum(&self, db: &str) -> Res<()> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            check_interrupt(&self.interrupted)?;
            let busy = baseline::count(
                &self.pg,
                db,
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'",
            )?;
            if busy == 0 {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(())
    }

    /// Progress latency at `rps` while an append run loads `copies` copies
    /// of the objects: with the loading workers inside `sluice serve` (the
    /// default deployment, which the target is judged on), then with them in
    /// a separate `sluice worker` process, then idle.
    fn latency(
        &mut self,
        d: &DataSet,
        objects: &[(String, PathBuf)],
        copies: usize,
    ) -> Res<LatencyResults> {
        let mut keys = Vec::new();
        for i in 1..=copies {
            keys.extend(self.put_all(&format!("latency/copy-{i:03}-"), objects)?);
        }
        let (in_process, idle, info) = self.latency_run(false)?;
        let (separate, _, separate_info) = self.latency_run(true)?;
        for key in &keys {
            self.s3_delete(key);
        }
        Ok(LatencyResults {
            in_process,
            separate,
            idle: idle.unwrap_or_default(),
            info: json!({
                "copies": copies,
                "rows": d.rows * copies as u64,
                "partitions": LATENCY_PARTITIONS,
                "workers": LATENCY_PARTITIONS,
                "connections": LATENCY_CONNECTIONS,
                "inProcessRun": info,
                "separateWorkerRun": separate_info,
            }),
        })
    }

    /// One latency measurement in a fresh database: the load while the run
    /// loads, then (in-process only) the idle figure.
    fn latency_run(
        &mut self,
        separate: bool,
    ) -> Res<(latency::Load, Option<latency::Load>, Value)> {
        let db = self.next_db(if separate {
            "latency_worker"
        } else {
            "latency"
        });
        baseline::fresh_database(&self.pg, &db)?;
        let log = self.out.join("logs").join(format!("{db}.log"));
        let serve_workers = if separate { 0 } else { LATENCY_PARTITIONS };
        let server = Sluice::start(&self.bin, &self.pg.url(&db), serve_workers, log)?;
        let worker = if separate {
            let log = self.out.join("logs").join(format!("{db}-worker.log"));
            Some(Sluice::start_worker(
                &self.bin,
                &self.pg.url(&db),
                LATENCY_PARTITIONS,
                log,
            )?)
        } else {
            None
        };
        let mut api = server.api();
        let connector = api.s3_connector(BUCKET, &self.moto.endpoint())?;
        let pipeline = api.pipeline(&json!({
            "name": "bench latency",
            "connectorId": connector,
            "source": {"prefix": "latency/", "pattern": "*.csv", "csv": {"header": true}},
            "schema": schema(),
            "destination": {"table": "customers", "keyColumns": []},
            "loadStrategy": "append",
            "partitions": LATENCY_PARTITIONS,
        }))?;
        let run = api.start_run(&pipeline)?;
        let path = Api::progress_path(&pipeline, &run);
        // Measure while rows load, not during extraction.
        let wait = Instant::now();
        loop {
            check_interrupt(&self.interrupted)?;
            let p = api.progress(&pipeline, &run)?;
            match p["status"].as_str().unwrap_or_default() {
                "pending" if wait.elapsed() < Duration::from_secs(600) => {}
                "running" => break,
                other => return Err(format!("latency run is {other} before it loaded: {p}")),
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let (addr, auth) = (api.addr().to_owned(), api.auth().to_owned());
        let target = latency::Target {
            addr: &addr,
            path: &path,
            auth: &auth,
        };
        let loaded = latency::run(
            &target,
            &latency::Pace {
                rps: self.opts.rps,
                connections: LATENCY_CONNECTIONS,
                limit: Duration::from_secs(self.opts.latency_seconds),
                stop_on_terminal: true,
            },
            &self.interrupted,
        );
        // The load window is over: cancel the rest of the run (it was sized
        // to outlast the window) and wait until it has stopped.
        let cancel = format!("/api/v1/pipelines/{pipeline}/runs/{run}/cancel");
        if let Err(e) = api.call("POST", &cancel, Some(&json!({})), 200) {
            // It may just have finished by itself.
            eprintln!("bench: cancelling the latency run: {e}");
        }
        let end = Instant::now();
        let final_progress = loop {
            check_interrupt(&self.interrupted)?;
            let p = api.progress(&pipeline, &run)?;
            if is_terminal(p["status"].as_str().unwrap_or_default()) {
                break p;
            }
            if end.elapsed() > Duration::from_secs(600) {
                return Err(format!(
                    "latency run not stopped 10 min after its cancel: {p}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let idle = if separate {
            None
        } else {
            // Measure "idle" only once the workers noticed the cancel and
            // PostgreSQL's autovacuum is done with the freshly loaded table.
            std::thread::sleep(Duration::from_secs(1));
            self.wait_for_autovacuum(&db)?;
            Some(latency::run(
                &target,
                &latency::Pace {
                    rps: self.opts.rps,
                    connections: LATENCY_CONNECTIONS,
                    limit: Duration::from_secs(5),
                    stop_on_terminal: false,
                },
                &self.interrupted,
            ))
        };
        drop(api);
        drop(worker);
        drop(server);
        baseline::drop_database(&self.pg, &db)?;
        let info = json!({
            "runStatus": final_progress["status"],
            "runProcessedRows": final_progress["processedRows"],
            "runDurationMs": final_progress["durationMs"],
        });
        Ok((loaded, idle, info))
    }
}

/// Partitions (and workers) of the run loading during the latency measurement.
const LATENCY_PARTITIONS: usize = 4;
/// Keep-alive connections of the latency load.
const LATENCY_CONNECTIONS: usize = 4;

/// The progress latency figures.
#[derive(Debug, Clone)]
pub struct LatencyResults {
    /// While loading with the workers inside `sluice serve`.
    pub in_process: latency::Load,
    /// While loading with the workers in a separate `sluice worker` process.
    pub separate: latency::Load,
    /// After the run, with nothing loading.
    pub idle: latency::Load,
    /// How the load was made.
    pub info: Value,
}

/// Runs the benchmarks.
pub fn run(args: &[String]) -> Res<ExitCode> {
    let opts = Opts::parse(args)?;
    let began = Instant::now();
    let load_at_start = report::load_average();
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // The flag is checked between steps, so the servers' guards run.
        ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
            .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let out = target.join("bench");
    std::fs::create_dir_all(out.join("logs")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(crate::infra::state_dir()).map_err(|e| e.to_string())?;

    let bin = match &opts.sluice {
        Some(bin) if bin.is_file() => bin.clone(),
        Some(bin) => return Err(format!("--sluice: {} is not a file", bin.display())),
        None => {
            eprintln!("bench: cargo build --release -p sluice-server");
            let bin = crate::run::build_sluice(true)?;
            eprintln!(
                "bench: sluice built ({:.0} s)",
                began.elapsed().as_secs_f64()
            );
            bin
        }
    };
    eprintln!("bench: generating {} rows (seed {})", opts.rows, opts.seed);
    let data_dir = out.join("data");
    let d = data::generate(&data_dir, opts.rows, opts.seed, true)?;
    eprintln!(
        "bench: {} ({:.1} MiB): {} invalid, {} repeated ids, {} clean rows",
        d.full
            .file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default(),
        d.full_bytes as f64 / 1_048_576.0,
        d.invalid,
        d.duplicates,
        d.clean_rows
    );

    // A cluster of its own: the test cluster may be in use by `cargo xtask test`.
    let pg = Postgres::start("pg-bench")?;
    let moto = Moto::start()?;
    eprintln!(
        "bench: PostgreSQL on 127.0.0.1:{}, S3 server on {}",
        pg.port,
        moto.endpoint()
    );
    let meter = CpuMeter {
        client: None,
        postgres: pg.postmaster_pid(),
        s3: moto.pid(),
        hz: procfs::ticks_per_second(),
    };
    let mut bench = Bench {
        opts: opts.clone(),
        pg,
        moto,
        bin,
        out: out.clone(),
        meter,
        interrupted,
        seq: 0,
        peers: None,
    };
    bench.s3_put("", None)?;
    let objects = bench.objects(&d, "objects")?;
    bench.put_all("full/", &objects)?;
    eprintln!("bench: uploaded as {} object(s)", objects.len());
    if opts.scenarios.contains(&Scenario::AppendGzip) {
        let gzipped = data::gzip_all(&objects, &out.join("data").join("gzip-objects"))?;
        bench.put_all(GZIP_PREFIX, &gzipped)?;
        eprintln!("bench: uploaded gzip-compressed copies of them");
    }

    let mut results = Results::default();
    if opts.peers {
        let p = peers::Peers::install(&out.join("peers"))?;
        results.peer_versions = p.versions.clone();
        bench.peers = Some(p);
    }
    let mut baselines: Vec<Baseline> = opts.scenarios.iter().map(|s| s.baseline()).collect();
    baselines.dedup();
    baselines.sort_by_key(|b| b.name());
    baselines.dedup();
    for rep in 1..=opts.reps {
        for &b in &baselines {
            check_interrupt(&bench.interrupted)?;
            let step = Instant::now();
            let s = bench.baseline(b, &d)?;
            eprintln!(
                "bench: rep {rep}/{} baseline {:<15} {:>7.2} s  {:>9.0} rows/s  (step {:.1} s)",
                opts.reps,
                b.name(),
                s.seconds,
                s.rows as f64 / s.seconds,
                step.elapsed().as_secs_f64()
            );
            push(&mut results.baselines, b, s);
        }
        for &scenario in &opts.scenarios {
            for &p in &opts.partitions {
                check_interrupt(&bench.interrupted)?;
                let step = Instant::now();
                let s = bench.sluice_run(scenario, p, scenario.source().0, &d)?;
                eprintln!(
                    "bench: rep {rep}/{} sluice {:<12} {p}p  {:>7.2} s  {:>9.0} rows/s  peak {:.0} MiB  (step {:.1} s)",
                    opts.reps,
                    scenario.name(),
                    s.seconds,
                    s.rows as f64 / s.seconds,
                    s.peak_rss_mib.unwrap_or(0.0),
                    step.elapsed().as_secs_f64()
                );
                push(&mut results.runs, (scenario, p), s);
            }
        }
        if let Some(tools) = bench.peers.take() {
            for peer in peers::Peer::ALL {
                for load in peers::PeerLoad::ALL {
                    check_interrupt(&bench.interrupted)?;
                    let db = bench.next_db(&format!("{}_{}", peer.name(), load.name()));
                    let s = tools.run(&bench.pg, &bench.meter, &db, peer, load, &d)?;
                    eprintln!(
                        "bench: rep {rep}/{} peer {:<8} {:<6} {:>7.2} s  {:>9.0} rows/s  peak {:.0} MiB  rejected {}/{}",
                        opts.reps,
                        peer.name(),
                        load.name(),
                        s.seconds,
                        s.rows as f64 / s.seconds,
                        s.peak_rss_mib.unwrap_or(0.0),
                        s.rejected,
                        d.invalid,
                    );
                    push(&mut results.peers, (peer, load), s);
                }
            }
            bench.peers = Some(tools);
        }
    }

    if opts.run_big() {
        check_interrupt(&bench.interrupted)?;
        eprintln!("bench: memory run: generating {} rows", opts.big_rows);
        let big = data::generate(&data_dir, opts.big_rows, opts.seed, false)?;
        let big_objects = bench.objects(&big, "big-objects")?;
        let big_keys = bench.put_all("big/", &big_objects)?;
        let _ = std::fs::remove_dir_all(data_dir.join("big-objects"));
        let s = bench.sluice_run(Scenario::Append, 4, "big/", &big)?;
        eprintln!(
            "bench: memory run append 4p {} rows: {:.1} s, peak {:.0} MiB",
            big.rows,
            s.seconds,
            s.peak_rss_mib.unwrap_or(0.0)
        );
        for key in &big_keys {
            bench.s3_delete(key);
        }
        let _ = std::fs::remove_file(&big.full);
        results.big = Some(s);
    }

    if opts.ledger_files > 0 {
        check_interrupt(&bench.interrupted)?;
        results.ledger = Some(bench.ledger(opts.ledger_files)?);
    }

    if opts.latency_seconds > 0 {
        check_interrupt(&bench.interrupted)?;
        // Enough copies of the file that the run loads for the whole window,
        // judged from the append throughput just measured (with a margin:
        // a long run goes faster than the short ones; the rest is cancelled).
        let rate = results
            .runs
            .iter()
            .filter(|((s, _), _)| *s == Scenario::Append)
            .flat_map(|(_, v)| v.iter().map(|r| r.rows as f64 / r.seconds))
            .fold(0.0, f64::max);
        let rate = if rate > 0.0 { rate } else { 200_000.0 };
        let wanted = (opts.latency_seconds as f64 + 3.0) * rate * 2.0;
        let copies = ((wanted / d.rows as f64).ceil() as usize).clamp(1, 50);
        eprintln!(
            "bench: progress latency at {} req/s for up to {} s while loading {copies} x {} rows",
            opts.rps, opts.latency_seconds, d.rows
        );
        results.latency = Some(bench.latency(&d, &objects, copies)?);
    }

    let elapsed = began.elapsed();
    let mut options = opts_json(&opts, args);
    options["loadAverageAtStart"] = json!(load_at_start);
    let report = report::Report::new(&options, &d, &results, elapsed, &bench.pg);
    println!("{}", report.table());
    let written = report.write_json(&out)?;
    eprintln!("bench: wrote {}", written.display());
    if opts.docs {
        let doc = root().join("docs").join("benchmarks.md");
        report.update_docs(&doc)?;
        eprintln!("bench: updated docs/benchmarks.md");
    }
    eprintln!("bench: done in {:.0} s", elapsed.as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// The command line as typed, with the `--sluice` path shown relative to
/// the workspace (or as a bare file name), so no machine path ends up in
/// the committed report.
fn command_line(args: &[String]) -> String {
    let root = root();
    let mut out = vec!["cargo xtask bench".to_owned()];
    let mut after_sluice = false;
    for a in args {
        if after_sluice {
            let p = Path::new(a);
            let shown = match p.strip_prefix(&root) {
                Ok(rel) => rel.display().to_string(),
                Err(_) if p.is_absolute() => p
                    .file_name()
                    .map_or_else(|| a.clone(), |f| f.to_string_lossy().into_owned()),
                Err(_) => a.clone(),
            };
            out.push(shown);
        } else {
            out.push(a.clone());
        }
        after_sluice = a == "--sluice";
    }
    out.join(" ")
}

fn opts_json(o: &Opts, args: &[String]) -> Value {
    json!({
        "command": command_line(args),
        "rows": o.rows,
        "reps": o.reps,
        "partitions": o.partitions,
        "scenarios": o.scenarios.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "seed": o.seed,
        "bigRows": o.run_big().then_some(o.big_rows),
        "latencySeconds": o.latency_seconds,
        "rps": o.rps,
        "pollMs": o.poll_ms,
        "prebuiltSluice": o.sluice.is_some(),
        "objectRows": o.object_rows,
        "ledgerFiles": o.ledger_files,
        "peers": o.peers,
    })
}
