//! A paced load generator: `connections` threads, each on one keep-alive
//! connection, together sending `rps` requests per second on a fixed
//! schedule (open loop: a slow answer does not lower the offered rate, it
//! only delays that thread's next send).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http::{Body, Conn};
use super::server::is_terminal;

/// What one load measured.
#[derive(Debug, Clone, Default)]
pub struct Load {
    /// Latency of each answered request, from its send to the end of its
    /// answer, in microseconds, sorted.
    pub sent_us: Vec<u64>,
    /// The same measured from when the request was due by the schedule
    /// (includes any delay in sending it: no coordinated omission).
    pub due_us: Vec<u64>,
    /// Requests that failed or did not answer 200.
    pub errors: u64,
    /// How long the load ran.
    pub seconds: f64,
    /// The offered rate.
    pub target_rps: f64,
    /// Whether a progress answer reported a terminal run (the load stops then).
    pub saw_terminal: bool,
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

impl Load {
    /// The achieved rate of answered requests.
    pub fn achieved_rps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.sent_us.len() as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// A JSON summary (milliseconds).
    pub fn summary(&self) -> Value {
        let ms = |v: Option<u64>| v.map(|us| us as f64 / 1000.0);
        json!({
            "samples": self.sent_us.len(),
            "errors": self.errors,
            "seconds": self.seconds,
            "targetRps": self.target_rps,
            "achievedRps": self.achieved_rps(),
            "p50Ms": ms(percentile(&self.sent_us, 0.50)),
            "p90Ms": ms(percentile(&self.sent_us, 0.90)),
            "p99Ms": ms(percentile(&self.sent_us, 0.99)),
            "maxMs": ms(self.sent_us.last().copied()),
            "p99FromScheduleMs": ms(percentile(&self.due_us, 0.99)),
            "runFinishedDuringLoad": self.saw_terminal,
        })
    }
}

/// Where the load goes.
pub struct Target<'a> {
    /// `127.0.0.1:port`.
    pub addr: &'a str,
    /// The request path.
    pub path: &'a str,
    /// The `Authorization` header value.
    pub auth: &'a str,
}

/// How the load is paced.
pub struct Pace {
    /// Offered requests per second (all connections together).
    pub rps: f64,
    /// Keep-alive connections, one thread each.
    pub connections: usize,
    /// Longest duration.
    pub limit: Duration,
    /// Stop as soon as an answer shows a terminal run.
    pub stop_on_terminal: bool,
}

/// Sends GET requests to `target` paced by `pace`, until its limit, a
/// terminal run (when asked) or `interrupted`.
pub fn run(target: &Target<'_>, pace: &Pace, interrupted: &Arc<AtomicBool>) -> Load {
    let (rps, limit, stop_on_terminal) = (pace.rps, pace.limit, pace.stop_on_terminal);
    let connections = pace.connections.max(1);
    let stop = Arc::new(AtomicBool::new(false));
    let terminal = Arc::new(AtomicBool::new(false));
    // Request k (over all threads) is due at start + k / rps; thread i sends
    // k = i, i + connections, i + 2·connections, …
    let interval = Duration::from_secs_f64(1.0 / rps.max(1.0));
    let start = Instant::now() + Duration::from_millis(50);
    let handles: Vec<_> = (0..connections)
        .map(|i| {
            let (addr, path, auth) = (
                target.addr.to_owned(),
                target.path.to_owned(),
                target.auth.to_owned(),
            );
            let (stop, terminal, interrupted) =
                (stop.clone(), terminal.clone(), interrupted.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::new(&addr).with_timeout(Duration::from_secs(10));
                let headers = [("Authorization", auth.as_str())];
                let (mut sent, mut due, mut errors) = (Vec::new(), Vec::new(), 0u64);
                let mut k = i as u32;
                loop {
                    let at = start + interval * k;
                    if at.duration_since(start) >= limit
                        || stop.load(Ordering::Relaxed)
                        || interrupted.load(Ordering::Relaxed)
                    {
                        break;
                    }
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    let t0 = Instant::now();
                    match conn.request("GET", &path, &headers, &Body::Empty) {
                        Ok(r) if r.status == 200 => {
                            let t1 = Instant::now();
                            sent.push(u64::try_from((t1 - t0).as_micros()).unwrap_or(u64::MAX));
                            due.push(u64::try_from((t1 - at).as_micros()).unwrap_or(u64::MAX));
                            if stop_on_terminal {
                                let status = serde_json::from_slice::<Value>(&r.body)
                                    .ok()
                                    .and_then(|v| v["status"].as_str().map(str::to_owned));
                                if status.as_deref().is_some_and(is_terminal) {
                                    terminal.store(true, Ordering::Relaxed);
                                    stop.store(true, Ordering::Relaxed);
                                }
                            }
                        }
                        _ => errors += 1,
                    }
                    k += connections as u32;
                }
                (sent, due, errors)
            })
        })
        .collect();
    let mut load = Load {
        target_rps: rps,
        ..Load::default()
    };
    for h in handles {
        if let Ok((sent, due, errors)) = h.join() {
            load.sent_us.extend(sent);
            load.due_us.extend(due);
            load.errors += errors;
        }
    }
    load.seconds = start.elapsed().as_secs_f64();
    load.sent_us.sort_unstable();
    load.due_us.sort_unstable();
    load.saw_terminal = terminal.load(Ordering::Relaxed);
    load
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
