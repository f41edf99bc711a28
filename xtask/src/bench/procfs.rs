//! What the benchmark reads from `/proc`: peak resident memory (`VmHWM`) and
//! CPU time of the processes taking part (sluice, PostgreSQL and its
//! backends, the S3 server, psql), so every figure comes with where the
//! machine's two cores went.

use std::process::Command;

/// A field of `/proc/<pid>/status` as text (`Uid`, `VmHWM`, …).
pub fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// A field of `/proc/<pid>/status` in KiB (`VmHWM`, `VmRSS`).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    status_field(pid, field)?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold
/// spaces, hence the split at the last parenthesis): index 0 is field 3.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    // Field 3 (state) is a letter: keep the positions, parse what is numeric.
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// CPU ticks of `pid`: (own user+system, reaped children's user+system).
pub fn cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let f = stat_fields(pid)?;
    let own = f.get(11)? + f.get(12)?;
    let children = f.get(13)? + f.get(14)?;
    Some((own, children))
}

/// The pids whose parent is `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            stat_fields(*pid)
                .and_then(|f| f.get(1).copied())
                .is_some_and(|ppid| ppid == u64::from(parent))
        })
        .collect()
}

/// CPU ticks of a process tree of one level, counting children that exited
/// (reaped by `root`) and children still running. The postmaster reaps its
/// backends, so this is all of PostgreSQL's CPU.
pub fn tree_ticks(root: u32) -> u64 {
    // A child reaped between reading the root and listing the children
    // would be counted nowhere: read until the root's reaped count holds
    // still around the listing.
    let mut last = 0;
    for _ in 0..10 {
        let (own, reaped) = cpu_ticks(root).unwrap_or((0, 0));
        let live: u64 = children_of(root)
            .into_iter()
            .filter_map(|c| cpu_ticks(c).map(|(o, _)| o))
            .sum();
        last = own + reaped + live;
        if cpu_ticks(root).is_none_or(|(_, again)| again == reaped) {
            break;
        }
    }
    last
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on every Linux we know).
pub fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// Ticks of the whole machine (all CPUs) from the first line of
/// `/proc/stat`: (busy, steal). Busy is user, nice, system, irq and softirq
/// (guest time is already in user); steal is time the hypervisor ran
/// something else while this machine wanted to run.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next().and_then(|l| l.strip_prefix("cpu ")) else {
        return (0, 0);
    };
    let f: Vec<u64> = cpu
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal …
    let busy = [0, 1, 2, 5, 6].iter().filter_map(|i| f.get(*i)).sum();
    (busy, f.get(7).copied().unwrap_or(0))
}

/// CPU seconds of the parties of one measurement.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// The `sluice` process (or psql for a baseline).
    pub client: f64,
    /// PostgreSQL: postmaster, backends, background processes.
    pub postgres: f64,
    /// The S3 server.
    pub s3: f64,
    /// Everything else the machine ran meanwhile (other people's builds on a
    /// shared machine): the noise the measurement shared the cores with.
    pub other: f64,
    /// CPU time the hypervisor gave to other guests (more noise).
    pub steal: f64,
}

/// Which processes a [`CpuMeter`] watches.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    /// The loading client (a `sluice` pid), or None to count this process's
    /// reaped children (psql).
    pub client: Option<u32>,
    /// The postmaster.
    pub postgres: Option<u32>,
    /// The S3 server.
    pub s3: Option<u32>,
    /// Ticks per second.
    pub hz: f64,
}

/// Raw tick counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnapshot {
    client: u64,
    postgres: u64,
    s3: u64,
    busy: u64,
    steal: u64,
}

impl CpuMeter {
    /// Reads the counters now.
    pub fn snapshot(&self) -> CpuSnapshot {
        let client = match self.client {
            Some(pid) => cpu_ticks(pid).map_or(0, |(own, _)| own),
            None => cpu_ticks(std::process::id()).map_or(0, |(_, reaped)| reaped),
        };
        CpuSnapshot {
            client,
            postgres: self.postgres.map_or(0, tree_ticks),
            s3: self.s3.and_then(cpu_ticks).map_or(0, |(own, _)| own),
            busy: machine_ticks().0,
            steal: machine_ticks().1,
        }
    }

    /// CPU seconds spent between two snapshots.
    pub fn between(&self, a: &CpuSnapshot, b: &CpuSnapshot) -> Cpu {
        let secs = |x: u64, y: u64| y.saturating_sub(x) as f64 / self.hz;
        let (client, postgres, s3) = (
            secs(a.client, b.client),
            secs(a.postgres, b.postgres),
            secs(a.s3, b.s3),
        );
        Cpu {
            client,
            postgres,
            s3,
            other: (secs(a.busy, b.busy) - client - postgres - s3).max(0.0),
            steal: secs(a.steal, b.steal),
        }
    }
}
