//! Contracts of the work queue: claims, leases, fencing, finalisation, retry.

use std::collections::HashSet;
use std::sync::Arc;

use sluice_domain::pipeline::LoadStrategy;
use sluice_domain::run::{Checkpoint, LogEntry, LogStage, SourcePosition};
use sluice_domain::status::{PartitionStatus, RunStatus};
use sluice_domain::validation::{RowError, ValidBatch};

use super::fixtures::T0;
use super::{ContractStore, Fixture};
use crate::ports::{BatchCommit, CommitError, PartitionClaim, RejectedRow};

/// Commits rows `from..=to` of a claim as valid rows `(id = row, name = "n{row}")`,
/// except rows listed in `bad`, which fail validation.
pub(crate) async fn commit_rows<S: ContractStore>(
    s: &S,
    claim: &PartitionClaim,
    target: &crate::ports::LoadTarget,
    from: u64,
    to: u64,
    bad: &[u64],
    key_of: impl Fn(u64) -> u64,
) -> Result<crate::ports::CommitOutcome, CommitError> {
    let mut rows = ValidBatch::new(2);
    let mut errors = Vec::new();
    let mut rejected = Vec::new();
    for r in from..=to {
        if bad.contains(&r) {
            errors.push(RowError::new(r, "id", "x", "Expected integer"));
            rejected.push(RejectedRow {
                row: r,
                file_index: 0,
                raw: format!("x,n{r}\n").into_bytes(),
            });
        } else {
            let id = key_of(r).to_string();
            let name = format!("n{r}");
            rows.push_row(r, [Some(id.as_str()), Some(name.as_str())]);
        }
    }
    let checkpoint = Checkpoint {
        row: to,
        next: SourcePosition {
            file_index: 0,
            byte_offset: to * 10,
        },
    };
    s.commit_batch(BatchCommit {
        claim,
        target,
        rows: &rows,
        errors: &errors,
        rejected: &rejected,
        checkpoint,
        revisit_cursor: None,
        rate: 100.0,
        at: T0,
    })
    .await
}

/// A pending run is extracted by one claimant; a stale token cannot complete it.
pub async fn extraction_is_claimed_once_and_fenced<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let run = f.new_run(&p);
    s.create_run(&run).await.expect("create");
    let first = s
        .claim_extraction(&f.worker(1), T0, 1_000)
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(first.run.id, run.id);
    assert!(!first.resume);
    assert_eq!(first.spec, p.spec);
    assert!(
        s.claim_extraction(&f.worker(2), T0.plus_millis(500), 1_000)
            .await
            .expect("claim")
            .is_none()
    );
    assert!(
        s.renew_extraction(&first, T0.plus_millis(1_500))
            .await
            .expect("renew")
    );
    assert!(
        s.claim_extraction(&f.worker(2), T0.plus_millis(1_200), 1_000)
            .await
            .expect("claim")
            .is_none()
    );
    // After expiry another worker takes over; the first one is fenced out.
    let second = s
        .claim_extraction(&f.worker(2), T0.plus_millis(1_600), 1_000)
        .await
        .expect("claim")
        .expect("reclaimed");
    assert_ne!(second.token, first.token);
    assert!(matches!(
        s.complete_extraction(&first, Some(&f.extraction(2, 5)), T0)
            .await,
        Err(CommitError::Fenced(_))
    ));
    assert!(
        !s.renew_extraction(&first, T0.plus_millis(9_000))
            .await
            .expect("renew")
    );
    s.complete_extraction(&second, Some(&f.extraction(2, 5)), T0.plus_millis(1_700))
        .await
        .expect("complete");
    let r = s.get_run(p.id, run.id).await.expect("get");
    assert_eq!(r.status, RunStatus::Running);
    assert_eq!(r.total_rows, Some(10));
    assert_eq!(r.partition_count, 2);
    assert_eq!(r.started_at, Some(T0.plus_millis(1_700)));
    let parts = s.list_partitions(run.id).await.expect("parts");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1].range.first_row, 6);
    assert_eq!(parts[1].checkpoint, Checkpoint::initial(&parts[1].range));
    assert!(parts.iter().all(|x| x.status == PartitionStatus::Pending));
    let files = s.run_files(run.id).await.expect("files");
    assert_eq!(files, f.extraction(2, 5).files);
    let log = s.run_log(run.id).await.expect("log");
    assert_eq!(
        log.last().map(|e| e.message.as_str()),
        Some("Read 10 rows from source")
    );
    assert!(matches!(
        s.complete_extraction(&second, None, T0).await,
        Err(CommitError::Fenced(_))
    ));
}

/// 8 concurrent claimants over 100 partitions: no partition twice, all 100 claimed.
pub async fn partition_claims_are_exclusive_under_concurrency<S: ContractStore>(s: Arc<S>) {
    let f = Arc::new(Fixture::new());
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let run_id = f.running_run(&*s, &p, 100, 3).await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = s.clone();
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(c) = s
                .claim_partition(&f.worker(w), T0, 60_000)
                .await
                .expect("claim")
            {
                assert_eq!(c.run_id, run_id);
                mine.push(c.range.index);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("join"));
    }
    let distinct: HashSet<u32> = all.iter().copied().collect();
    assert_eq!(all.len(), 100, "every partition claimed exactly once");
    assert_eq!(distinct.len(), 100);
    assert!(
        s.list_partitions(run_id)
            .await
            .expect("parts")
            .iter()
            .all(|x| x.status == PartitionStatus::Running)
    );
}

/// A partition whose lease expired is claimed again, starts after its
/// checkpoint, and the old holder can no longer commit.
pub async fn expired_partition_lease_is_reclaimed_after_its_checkpoint<S: ContractStore>(
    s: Arc<S>,
) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let run_id = f.running_run(&*s, &p, 1, 100).await;
    let target = f.target(&p, run_id, vec![run_id]);
    s.prepare_destination(&target).await.expect("prepare");
    let first = s
        .claim_partition(&f.worker(1), T0, 1_000)
        .await
        .expect("claim")
        .expect("claimed");
    commit_rows(&*s, &first, &target, 1, 40, &[], |r| r)
        .await
        .expect("commit");
    assert!(
        s.claim_partition(&f.worker(2), T0.plus_millis(999), 1_000)
            .await
            .expect("claim")
            .is_none()
    );
    let second = s
        .claim_partition(&f.worker(2), T0.plus_millis(1_001), 1_000)
        .await
        .expect("claim")
        .expect("reclaimed");
    assert_eq!(second.range.index, 0);
    assert_eq!(second.checkpoint.row, 40);
    assert_eq!(
        second.checkpoint.next,
        SourcePosition {
            file_index: 0,
            byte_offset: 400
        }
    );
    assert_eq!(second.counters.loaded, 40);
    assert_ne!(second.token, first.token);
    // The old holder is fenced out: nothing it commits lands.
    assert!(matches!(
        commit_rows(&*s, &first, &target, 41, 60, &[], |r| r).await,
        Err(CommitError::Fenced(_))
    ));
    commit_rows(&*s, &second, &target, 41, 100, &[], |r| r)
        .await
        .expect("commit");
    let rows = s.table_rows("t").await.expect("table");
    assert_eq!(rows.len(), 100, "no row lost or duplicated");
}

/// Renewal extends only the current token's lease; release hands the partition back.
pub async fn renew_and_release_respect_the_token<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let run_id = f.running_run(&*s, &p, 1, 10).await;
    let c = s
        .claim_partition(&f.worker(1), T0, 1_000)
        .await
        .expect("claim")
        .expect("claimed");
    assert!(
        s.renew_partition(&c, T0.plus_millis(5_000))
            .await
            .expect("renew")
    );
    assert!(
        s.claim_partition(&f.worker(2), T0.plus_millis(4_000), 1_000)
            .await
            .expect("claim")
            .is_none()
    );
    s.release_partition(&c).await.expect("release");
    assert_eq!(
        s.list_partitions(run_id).await.expect("parts")[0].status,
        PartitionStatus::Pending
    );
    assert!(
        !s.renew_partition(&c, T0.plus_millis(9_000))
            .await
            .expect("renew")
    );
    let again = s
        .claim_partition(&f.worker(2), T0.plus_millis(4_000), 1_000)
        .await
        .expect("claim")
        .expect("claimed");
    // Releasing with a stale claim is a no-op.
    s.release_partition(&c).await.expect("release stale");
    assert_eq!(
        s.list_partitions(run_id).await.expect("parts")[0].status,
        PartitionStatus::Running
    );
    assert!(
        s.renew_partition(&again, T0.plus_millis(6_000))
            .await
            .expect("renew")
    );
}

/// Finalisation sets `completed` or `completed_with_errors` exactly once and logs the outcome.
pub async fn finalize_sets_the_terminal_status_once<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let run_id = f.running_run(&*s, &p, 2, 10).await;
    let target = f.target(&p, run_id, vec![run_id]);
    s.prepare_destination(&target).await.expect("prepare");
    let a = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("a");
    let out = commit_rows(&*s, &a, &target, 1, 10, &[3, 4], |r| r)
        .await
        .expect("commit");
    assert!(out.partition_completed);
    assert_eq!((out.loaded, out.skipped, out.failed), (8, 0, 2));
    assert!(
        s.finalize_ready_runs(T0)
            .await
            .expect("finalize")
            .is_empty(),
        "partition 1 is not done"
    );
    let b = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("b");
    commit_rows(&*s, &b, &target, 11, 20, &[], |r| r)
        .await
        .expect("commit");
    let done = s
        .finalize_ready_runs(T0.plus_millis(50))
        .await
        .expect("finalize");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].run.status, RunStatus::CompletedWithErrors);
    assert_eq!(done[0].run.counters.processed(), 20);
    assert_eq!(done[0].spec, p.spec);
    assert!(
        s.finalize_ready_runs(T0.plus_millis(60))
            .await
            .expect("finalize")
            .is_empty()
    );
    let run = s.get_run(p.id, run_id).await.expect("get");
    assert_eq!(run.status, RunStatus::CompletedWithErrors);
    assert_eq!(run.finished_at, Some(T0.plus_millis(50)));
    let log = s.run_log(run_id).await.expect("log");
    let last = log.last().expect("a log entry");
    assert_eq!(last.stage, LogStage::Finalize);
    assert!(
        last.message.contains("20 of 20 rows processed"),
        "{}",
        last.message
    );
    // An extracted empty source finalises as completed.
    let p2 = f.pipeline(&*s, "u", LoadStrategy::Append, false).await;
    let empty = f.new_run(&p2);
    s.create_run(&empty).await.expect("create");
    let claim = s
        .claim_extraction(&f.worker(1), T0, 1_000)
        .await
        .expect("claim")
        .expect("claimed");
    let mut nothing = f.extraction(0, 0);
    nothing.files.clear();
    s.complete_extraction(&claim, Some(&nothing), T0)
        .await
        .expect("complete");
    let done = s.finalize_ready_runs(T0).await.expect("finalize");
    assert_eq!(
        done.iter()
            .map(|d| (d.run.id, d.run.status))
            .collect::<Vec<_>>(),
        vec![(empty.id, RunStatus::Completed)]
    );
}

/// Failing a run marks unfinished partitions failed and stops claims; twice is a no-op.
pub async fn fail_run_stops_every_partition<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let run_id = f.running_run(&*s, &p, 3, 10).await;
    let target = f.target(&p, run_id, vec![run_id]);
    s.prepare_destination(&target).await.expect("prepare");
    let a = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("a");
    commit_rows(&*s, &a, &target, 1, 10, &[], |r| r)
        .await
        .expect("commit");
    let b = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("b");
    let entry = LogEntry {
        stage: LogStage::Load,
        message: "Destination error: boom".into(),
        timestamp: T0,
    };
    assert!(
        s.fail_run(run_id, &entry, T0.plus_millis(3))
            .await
            .expect("fail")
    );
    assert!(
        !s.fail_run(run_id, &entry, T0.plus_millis(4))
            .await
            .expect("fail twice")
    );
    let run = s.get_run(p.id, run_id).await.expect("get");
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("Destination error: boom"));
    let statuses: Vec<_> = s
        .list_partitions(run_id)
        .await
        .expect("parts")
        .iter()
        .map(|x| x.status)
        .collect();
    assert_eq!(
        statuses,
        vec![
            PartitionStatus::Completed,
            PartitionStatus::Failed,
            PartitionStatus::Failed
        ]
    );
    assert!(matches!(
        commit_rows(&*s, &b, &target, 11, 20, &[], |r| r).await,
        Err(CommitError::Fenced(_))
    ));
    assert!(
        s.claim_partition(&f.worker(2), T0.plus_millis(99_999), 1_000)
            .await
            .expect("claim")
            .is_none()
    );
    assert_eq!(
        s.get_run(p.id, run_id).await.expect("run").status,
        RunStatus::Failed
    );
}

/// A resumable retry takes over checkpoints and loaded/skipped counters, and
/// must revisit every row that failed; a replace retry starts empty.
pub async fn retry_copies_checkpoints_and_rows_to_revisit<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let run_id = f.running_run(&*s, &p, 2, 10).await;
    let target = f.target(&p, run_id, vec![run_id]);
    s.prepare_destination(&target).await.expect("prepare");
    let a = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("a");
    commit_rows(&*s, &a, &target, 1, 10, &[2], |r| r)
        .await
        .expect("commit");
    let b = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("b");
    commit_rows(&*s, &b, &target, 11, 14, &[12, 13], |r| r)
        .await
        .expect("commit");
    let entry = LogEntry {
        stage: LogStage::Load,
        message: "Source unreachable".into(),
        timestamp: T0,
    };
    s.fail_run(run_id, &entry, T0).await.expect("fail");

    let retry = f.new_run(&p);
    s.create_retry_run(&retry, run_id, true)
        .await
        .expect("retry");
    let parts = s.list_partitions(retry.id).await.expect("parts");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].checkpoint.row, 10);
    assert_eq!(parts[1].checkpoint.row, 14);
    assert_eq!((parts[0].counters.loaded, parts[0].counters.failed), (9, 0));
    assert_eq!((parts[1].counters.loaded, parts[1].counters.failed), (2, 0));
    assert!(
        parts.iter().all(|x| x.status == PartitionStatus::Pending),
        "partition 0 must revisit row 2"
    );
    assert_eq!(
        s.run_files(retry.id).await.expect("files"),
        s.run_files(run_id).await.expect("files")
    );
    let run = s.get_run(p.id, retry.id).await.expect("get");
    assert_eq!(run.status, RunStatus::Pending);
    assert_eq!(run.total_rows, Some(20));
    let claim = s
        .claim_extraction(&f.worker(1), T0, 1_000)
        .await
        .expect("claim")
        .expect("claimed");
    assert!(claim.resume);
    s.complete_extraction(&claim, None, T0)
        .await
        .expect("complete");
    // The retry carries the original's loaded and skipped rows: counted once.
    let rows = s.count_rows_by_outcome().await.expect("rows by outcome");
    assert_eq!((rows.loaded, rows.skipped, rows.failed), (11, 0, 0));
    let revisit0 = s.revisit_rows(retry.id, 0, 0, 10).await.expect("revisits");
    assert_eq!(revisit0.iter().map(|r| r.row).collect::<Vec<_>>(), vec![2]);
    assert_eq!(revisit0[0].raw, b"x,n2\n".to_vec());
    let revisit1 = s.revisit_rows(retry.id, 1, 12, 10).await.expect("revisits");
    assert_eq!(revisit1.iter().map(|r| r.row).collect::<Vec<_>>(), vec![13]);
    let mut claims = Vec::new();
    while let Some(c) = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
    {
        claims.push(c);
    }
    assert_eq!(claims.len(), 2);
    assert_eq!(claims[0].pending_revisits, 1);
    assert_eq!(claims[1].pending_revisits, 2);

    // Not resumable: nothing is copied.
    let p2 = f.pipeline(&*s, "u", LoadStrategy::Replace, false).await;
    let r2 = f.running_run(&*s, &p2, 1, 5).await;
    s.fail_run(r2, &entry, T0).await.expect("fail");
    let retry2 = f.new_run(&p2);
    s.create_retry_run(&retry2, r2, false).await.expect("retry");
    assert!(
        s.list_partitions(retry2.id)
            .await
            .expect("parts")
            .is_empty()
    );
    assert_eq!(
        s.get_run(p2.id, retry2.id).await.expect("get").total_rows,
        None
    );
}

/// Commits a revisit batch: rows of the original run given again, with the
/// checkpoint unchanged and the revisit cursor moved to `cursor`.
async fn commit_revisits<S: ContractStore>(
    s: &S,
    claim: &PartitionClaim,
    target: &crate::ports::LoadTarget,
    rows: &[u64],
    cursor: u64,
) -> crate::ports::CommitOutcome {
    let mut batch = ValidBatch::new(2);
    for r in rows {
        let (id, name) = (r.to_string(), format!("n{r}"));
        batch.push_row(*r, [Some(id.as_str()), Some(name.as_str())]);
    }
    s.commit_batch(BatchCommit {
        claim,
        target,
        rows: &batch,
        errors: &[],
        rejected: &[],
        checkpoint: claim.checkpoint,
        revisit_cursor: Some(cursor),
        rate: 10.0,
        at: T0,
    })
    .await
    .expect("commit revisits")
}

/// A resumable retry loads the rows it revisits and the rest of each range;
/// a partition completes only once both are done, and the run then finishes
/// with every row of the source accounted for.
pub async fn retry_revisits_and_resumes_to_completion<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let run_id = f.running_run(&*s, &p, 2, 10).await;
    let target = f.target(&p, run_id, vec![run_id]);
    s.prepare_destination(&target).await.expect("prepare");
    for (from, to, bad) in [(1, 10, &[2][..]), (11, 14, &[12, 13][..])] {
        let c = s
            .claim_partition(&f.worker(1), T0, 60_000)
            .await
            .expect("claim")
            .expect("a partition");
        commit_rows(&*s, &c, &target, from, to, bad, |r| r)
            .await
            .expect("commit");
    }
    let entry = LogEntry {
        stage: LogStage::Load,
        message: "Source unreachable".into(),
        timestamp: T0,
    };
    s.fail_run(run_id, &entry, T0).await.expect("fail");
    let retry = f.new_run(&p);
    s.create_retry_run(&retry, run_id, true)
        .await
        .expect("retry");
    let claim = s
        .claim_extraction(&f.worker(1), T0, 1_000)
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(claim.run.counters.loaded, 11, "counters taken over");
    s.complete_extraction(&claim, None, T0)
        .await
        .expect("complete");
    let rtarget = f.target(&p, retry.id, vec![retry.id, run_id]);
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
    let out = commit_revisits(&*s, &a, &rtarget, &[2], 2).await;
    assert_eq!((out.loaded, out.failed), (1, 0));
    assert!(
        out.partition_completed,
        "checkpoint at the end, nothing left to revisit"
    );
    let out = commit_revisits(&*s, &b, &rtarget, &[12], 12).await;
    assert!(!out.partition_completed, "row 13 and rows 15..=20 remain");
    let out = commit_revisits(&*s, &b, &rtarget, &[13], 13).await;
    assert!(!out.partition_completed, "rows 15..=20 remain");
    let out = commit_rows(&*s, &b, &rtarget, 15, 20, &[], |r| r)
        .await
        .expect("commit");
    assert!(out.partition_completed);
    assert_eq!(out.run_failed_rows, 0);
    let done = s.finalize_ready_runs(T0).await.expect("finalize");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].run.id, retry.id);
    assert_eq!(done[0].run.status, RunStatus::Completed);
    assert_eq!(
        (done[0].run.counters.loaded, done[0].run.counters.failed),
        (20, 0)
    );
    let rows = s.table_rows("t").await.expect("table");
    let mut loaded: Vec<u64> = rows.iter().map(|r| r.row).collect();
    loaded.sort_unstable();
    assert_eq!(
        loaded,
        (1..=20).collect::<Vec<_>>(),
        "every row exactly once"
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.run_id == retry.id.to_string())
            .count(),
        9
    );
}
