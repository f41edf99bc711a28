//! Contracts of the bulk loader: strategies, counting and atomic commits.

use std::sync::Arc;

use futures::StreamExt;
use sluice_domain::pipeline::LoadStrategy;
use sluice_domain::run::{Checkpoint, LogEntry, LogStage, SourcePosition};
use sluice_domain::status::RunStatus;
use sluice_domain::validation::{RowError, ValidBatch};

use super::fixtures::T0;
use super::queue::commit_rows;
use super::{ContractStore, Fixture};
use crate::ports::{BatchCommit, PageRequest};

/// Rows, errors, counters and checkpoint land together; errors read back in row order.
pub async fn append_without_keys_commits_rows_errors_and_checkpoint_atomically<S: ContractStore>(
    s: Arc<S>,
) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "events", LoadStrategy::Append, false).await;
    let run_id = f.running_run(&*s, &p, 2, 10).await;
    let target = f.target(&p, run_id, vec![run_id]);
    s.prepare_destination(&target).await.expect("prepare");
    s.prepare_destination(&target)
        .await
        .expect("prepare is idempotent");
    assert_eq!(s.table_rows("events").await, Some(vec![]));
    let a = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("a");
    let b = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("b");
    // Partition 1 commits before partition 0; duplicates are fine without keys.
    let out = commit_rows(&*s, &b, &target, 11, 20, &[15], |r| r % 3)
        .await
        .expect("commit b");
    assert_eq!(
        (out.loaded, out.skipped, out.failed, out.run_failed_rows),
        (9, 0, 1, 1)
    );
    let out = commit_rows(&*s, &a, &target, 1, 5, &[2, 4], |r| r % 3)
        .await
        .expect("commit a");
    assert_eq!(
        (out.loaded, out.skipped, out.failed, out.run_failed_rows),
        (3, 0, 2, 3)
    );
    assert!(!out.partition_completed);
    let rows = s.table_rows("events").await.expect("table");
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|r| r.run_id == run_id.to_string()));
    let mut loaded_rows: Vec<u64> = rows.iter().map(|r| r.row).collect();
    loaded_rows.sort_unstable();
    assert_eq!(
        loaded_rows,
        vec![1, 3, 5, 11, 12, 13, 14, 16, 17, 18, 19, 20]
    );
    let parts = s.list_partitions(run_id).await.expect("parts");
    assert_eq!(parts[0].checkpoint.row, 5);
    assert_eq!(parts[0].counters.processed(), 5);
    assert_eq!(parts[0].rate, Some(100.0));
    let run = s.get_run(p.id, run_id).await.expect("get");
    assert_eq!(
        (
            run.counters.loaded,
            run.counters.failed,
            run.counters.processed()
        ),
        (12, 3, 15)
    );
    assert_eq!(s.count_errors(run_id).await.expect("count"), 3);
    let first: Vec<u64> = s
        .first_errors(run_id, 2)
        .await
        .expect("first")
        .iter()
        .map(|e| e.row)
        .collect();
    assert_eq!(first, vec![2, 4]);
    let streamed: Vec<u64> = s
        .stream_errors(run_id)
        .map(|e| e.expect("error row").row)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(streamed, vec![2, 4, 15]);
    // Pages of the same list, in the same order, each after the last.
    let first_page = s
        .list_errors(
            run_id,
            &PageRequest {
                limit: 2,
                cursor: None,
            },
        )
        .await
        .expect("first page");
    assert_eq!(
        first_page.items.iter().map(|e| e.row).collect::<Vec<_>>(),
        vec![2, 4]
    );
    let next = first_page.next_cursor.expect("a second page");
    let second_page = s
        .list_errors(
            run_id,
            &PageRequest {
                limit: 2,
                cursor: Some(next),
            },
        )
        .await
        .expect("second page");
    assert_eq!(
        second_page.items.iter().map(|e| e.row).collect::<Vec<_>>(),
        vec![15]
    );
    assert_eq!(second_page.next_cursor, None);
    let whole = s
        .list_errors(
            run_id,
            &PageRequest {
                limit: 3,
                cursor: Some("not-ours".into()),
            },
        )
        .await
        .expect("a foreign cursor reads from the start");
    assert_eq!((whole.items.len(), whole.next_cursor), (3, None));
    let e = s.first_errors(run_id, 1).await.expect("first");
    assert_eq!(
        (
            e[0].column.as_str(),
            e[0].value.as_str(),
            e[0].error.as_str()
        ),
        ("id", "x", "Expected integer")
    );
    // The progress view's snapshot is the four reads it stands for.
    s.append_log(
        run_id,
        &LogEntry {
            stage: LogStage::Load,
            message: "loading".to_owned(),
            timestamp: T0,
        },
    )
    .await
    .expect("log");
    let snap = s.run_snapshot(p.id, run_id, 2).await.expect("snapshot");
    assert_eq!(snap.run, run);
    assert_eq!(snap.partitions, parts);
    assert_eq!(
        snap.first_errors,
        s.first_errors(run_id, 2).await.expect("first")
    );
    assert_eq!(snap.first_errors.len(), 2);
    assert_eq!(snap.log, s.run_log(run_id).await.expect("log"));
    assert!(snap.log.iter().any(|e| e.message == "loading"));
    let other = f.pipeline(&*s, "others", LoadStrategy::Append, false).await;
    assert!(matches!(
        s.run_snapshot(other.id, run_id, 2).await,
        Err(crate::ports::StoreError::NotFound { .. })
    ));
}

/// Append with keys: the first occurrence in row order wins within the load,
/// whatever order partitions commit in, and keys from earlier loads are skipped.
pub async fn append_with_keys_keeps_the_first_occurrence_whatever_the_commit_order<
    S: ContractStore,
>(
    s: Arc<S>,
) {
    let f = Fixture::new();
    let p = f
        .pipeline(&*s, "customers", LoadStrategy::Append, true)
        .await;
    let run_id = f.running_run(&*s, &p, 2, 10).await;
    let target = f.target(&p, run_id, vec![run_id]);
    s.prepare_destination(&target).await.expect("prepare");
    let a = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("a");
    let b = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("b");
    // Keys 1..=5 twice in each partition: rows r and r+5 share key ((r - 1) % 5) + 1.
    let key = |r: u64| (r - 1) % 5 + 1;
    let out_b = commit_rows(&*s, &b, &target, 11, 20, &[], key)
        .await
        .expect("commit b");
    let out_a = commit_rows(&*s, &a, &target, 1, 10, &[], key)
        .await
        .expect("commit a");
    assert_eq!(out_b.loaded + out_a.loaded, 5, "distinct keys");
    assert_eq!(out_b.skipped + out_a.skipped, 15);
    let rows = s.table_rows("customers").await.expect("table");
    let kept: Vec<(Option<String>, u64)> =
        rows.iter().map(|r| (r.values[0].clone(), r.row)).collect();
    assert_eq!(
        kept,
        (1..=5)
            .map(|k| (Some(k.to_string()), k))
            .collect::<Vec<_>>(),
        "rows 1..=5 are the first occurrences"
    );
    finish(&*s, run_id).await;

    // A second load of the same keys skips them all and adds the new one.
    let run2 = f.running_run(&*s, &p, 1, 6).await;
    let target2 = f.target(&p, run2, vec![run2]);
    let c = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("c");
    let out = commit_rows(&*s, &c, &target2, 1, 6, &[], |r| r)
        .await
        .expect("commit");
    assert_eq!((out.loaded, out.skipped), (1, 5));
    let rows = s.table_rows("customers").await.expect("table");
    assert_eq!(rows.len(), 6);
    assert_eq!(
        rows.iter().filter(|r| r.run_id == run2.to_string()).count(),
        1
    );
}

/// Upsert: the last occurrence in row order wins within the load whatever the
/// commit order, and a later load replaces earlier rows.
pub async fn upsert_keeps_the_last_occurrence_whatever_the_commit_order<S: ContractStore>(
    s: Arc<S>,
) {
    let f = Fixture::new();
    let p = f
        .pipeline(&*s, "customers", LoadStrategy::Upsert, true)
        .await;
    let run_id = f.running_run(&*s, &p, 2, 10).await;
    let target = f.target(&p, run_id, vec![run_id]);
    s.prepare_destination(&target).await.expect("prepare");
    let a = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("a");
    let b = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("b");
    let key = |r: u64| (r - 1) % 5 + 1;
    let out_b = commit_rows(&*s, &b, &target, 11, 20, &[], key)
        .await
        .expect("commit b");
    let out_a = commit_rows(&*s, &a, &target, 1, 10, &[], key)
        .await
        .expect("commit a");
    assert_eq!(out_a.loaded + out_a.skipped, 10);
    assert_eq!(out_b.loaded + out_b.skipped, 10);
    // In-batch duplicates are resolved before writing: b writes 5, a writes none
    // (b's rows are newer).
    assert_eq!((out_b.loaded, out_a.loaded), (5, 0));
    let rows = s.table_rows("customers").await.expect("table");
    let kept: Vec<(Option<String>, u64)> =
        rows.iter().map(|r| (r.values[0].clone(), r.row)).collect();
    assert_eq!(
        kept,
        (1..=5)
            .map(|k| (Some(k.to_string()), k + 15))
            .collect::<Vec<_>>()
    );
    finish(&*s, run_id).await;

    let run2 = f.running_run(&*s, &p, 1, 3).await;
    let target2 = f.target(&p, run2, vec![run2]);
    let c = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("c");
    let out = commit_rows(&*s, &c, &target2, 1, 3, &[], |r| r)
        .await
        .expect("commit");
    assert_eq!(
        (out.loaded, out.skipped),
        (3, 0),
        "a newer load replaces earlier rows"
    );
    let rows = s.table_rows("customers").await.expect("table");
    assert_eq!(rows.len(), 5);
    assert_eq!(
        rows.iter().filter(|r| r.run_id == run2.to_string()).count(),
        3
    );
    assert_eq!(rows[0].values[1].as_deref(), Some("n1"));
}

/// Replace: readers see the old table until the run completes; a failed run leaves it.
pub async fn replace_swaps_in_only_on_success<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f
        .pipeline(&*s, "snapshot", LoadStrategy::Replace, false)
        .await;
    let first = f.running_run(&*s, &p, 1, 3).await;
    let t1 = f.target(&p, first, vec![first]);
    s.prepare_destination(&t1).await.expect("prepare");
    assert_eq!(
        s.table_rows("snapshot").await,
        Some(vec![]),
        "the destination exists from the start"
    );
    let c = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("c");
    commit_rows(&*s, &c, &t1, 1, 3, &[], |r| r)
        .await
        .expect("commit");
    assert_eq!(
        s.table_rows("snapshot").await,
        Some(vec![]),
        "not visible before the swap"
    );
    finish(&*s, first).await;
    assert_eq!(s.table_rows("snapshot").await.expect("table").len(), 3);

    // A second replace run that fails leaves the first one's rows.
    let second = f.running_run(&*s, &p, 1, 5).await;
    let t2 = f.target(&p, second, vec![second]);
    s.prepare_destination(&t2).await.expect("prepare");
    let c = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("c");
    commit_rows(&*s, &c, &t2, 1, 2, &[], |r| r + 100)
        .await
        .expect("commit");
    let entry = LogEntry {
        stage: LogStage::Load,
        message: "failed".into(),
        timestamp: T0,
    };
    s.fail_run(second, &entry, T0).await.expect("fail");
    let rows = s.table_rows("snapshot").await.expect("table");
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.run_id == first.to_string()));

    // A third that succeeds replaces everything; duplicate keys keep the last occurrence.
    let p_keyed = f
        .pipeline(&*s, "snap_keyed", LoadStrategy::Replace, true)
        .await;
    let third = f.running_run(&*s, &p_keyed, 1, 6).await;
    let t3 = f.target(&p_keyed, third, vec![third]);
    s.prepare_destination(&t3).await.expect("prepare");
    let c = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("c");
    let out = commit_rows(&*s, &c, &t3, 1, 6, &[], |r| (r - 1) % 3)
        .await
        .expect("commit");
    assert_eq!((out.loaded, out.skipped), (3, 3));
    finish(&*s, third).await;
    let rows = s.table_rows("snap_keyed").await.expect("table");
    assert_eq!(
        rows.iter().map(|r| r.row).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
}

/// Error values keep their text (tabs, line breaks, backslashes, quotes,
/// any Unicode) except NUL, which no stored text can hold: it becomes U+FFFD.
pub async fn error_values_keep_their_text<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "events", LoadStrategy::Append, false).await;
    let run_id = f.running_run(&*s, &p, 1, 3).await;
    let target = f.target(&p, run_id, vec![run_id]);
    s.prepare_destination(&target).await.expect("prepare");
    let claim = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("a");
    let values = [
        "tab\there\nnew line\r\\N",
        "\"quoted\", 'single'; ünïcødé ✓",
        "nul\0byte",
    ];
    let errors: Vec<RowError> = values
        .iter()
        .enumerate()
        .map(|(i, v)| RowError::new(i as u64 + 1, "name", v, "Does not match pattern"))
        .collect();
    let rows = ValidBatch::new(2);
    s.commit_batch(BatchCommit {
        claim: &claim,
        target: &target,
        rows: &rows,
        errors: &errors,
        rejected: &[],
        checkpoint: Checkpoint {
            row: 3,
            next: SourcePosition {
                file_index: 0,
                byte_offset: 30,
            },
        },
        revisit_cursor: None,
        rate: 1.0,
        at: T0,
    })
    .await
    .expect("commit");
    let expected: Vec<String> = vec![
        values[0].to_owned(),
        values[1].to_owned(),
        "nul\u{FFFD}byte".to_owned(),
    ];
    let first: Vec<String> = s
        .first_errors(run_id, 10)
        .await
        .expect("first")
        .into_iter()
        .map(|e| e.value)
        .collect();
    assert_eq!(first, expected);
    let streamed: Vec<String> = s
        .stream_errors(run_id)
        .map(|e| e.expect("error row").value)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(streamed, expected);
}

async fn finish<S: ContractStore>(s: &S, run_id: sluice_domain::ids::RunId) {
    let done = s.finalize_ready_runs(T0).await.expect("finalize");
    assert!(
        done.iter()
            .any(|d| d.run.id == run_id && d.run.status == RunStatus::Completed),
        "{done:?}"
    );
}
