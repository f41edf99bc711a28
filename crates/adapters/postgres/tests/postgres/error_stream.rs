//! Streaming a run's validation errors in bounded memory.

use std::sync::Arc;

use futures::StreamExt;
use sluice_application::ports::RunStore;
use sluice_application::testing::contract::Fixture;
use sluice_domain::pipeline::LoadStrategy;

use crate::support::{SluiceMigrations, TestDb, store};

const ERRORS: i64 = 1_000_000;

/// Peak resident memory of this process since the last reset, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Resets the peak to the current resident size.
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
}

/// A run with 1,000,000 stored errors streams all of them, in row order,
/// while the test process stays under 100 MiB of peak memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_errors_stream_in_row_order_in_bounded_memory() {
    reset_peak_rss();
    let db = TestDb::migrated(&SluiceMigrations).await;
    let store = Arc::new(store(&db).await);
    let f = Fixture::new();
    let p = f.pipeline(&*store, "t", LoadStrategy::Append, false).await;
    let run_id = f.running_run(&*store, &p, 1, 10).await;
    let client = db.client().await;
    let started = std::time::Instant::now();
    client
        .execute(
            "INSERT INTO sluice.validation_errors (run_id, row_num, column_name, value, error) \
             SELECT $1, g, 'email', 'not-an-email-' || g || repeat('x', 60), \
                    'Invalid email format' \
             FROM generate_series(1, $2::bigint) g",
            &[&run_id.to_string(), &ERRORS],
        )
        .await
        .expect("insert errors");
    client
        .execute("ANALYZE sluice.validation_errors", &[])
        .await
        .expect("analyze");
    assert_eq!(store.count_errors(run_id).await.expect("count"), 1_000_000);

    let inserted = started.elapsed();
    let started = std::time::Instant::now();
    let mut stream = store.stream_errors(run_id);
    let mut seen = 0u64;
    let mut last = 0u64;
    while let Some(e) = stream.next().await {
        let e = e.expect("error row");
        assert!(e.row > last, "row order: {} after {last}", e.row);
        last = e.row;
        seen += 1;
    }
    assert_eq!(seen, 1_000_000);
    let peak_mib = peak_rss_kib() as f64 / 1024.0;
    eprintln!(
        "1,000,000 errors: inserted in {inserted:.1?}, streamed in {:.1?}; \
         peak memory (VmHWM) {peak_mib:.1} MiB",
        started.elapsed()
    );
    assert!(peak_mib < 100.0, "peak memory {peak_mib:.1} MiB");
    drop(stream);
    drop(client);
    drop(store);
    db.drop_db().await;
}
