//! Contracts of the file ledger: per-file counters kept by batch commits,
//! the ledger written at finalisation, lookups, listing and forgetting.

use std::sync::Arc;

use sluice_domain::ids::RunId;
use sluice_domain::ledger::{RunFile, RunFileStatus};
use sluice_domain::pipeline::{LoadStrategy, Pipeline};
use sluice_domain::run::RunMetadata;

use super::fixtures::T0;
use super::queue::commit_rows;
use super::{ContractStore, Fixture};
use crate::ports::{ForgetFiles, PageRequest, StoreError};

/// Creates and extracts a run of `p` whose 10 rows (2 partitions of 5) lie
/// in two files of 3 and 7 rows.
async fn two_file_run<S: ContractStore>(s: &S, f: &Fixture, p: &Pipeline) -> RunId {
    let run = f.new_run(p);
    s.create_run(&run).await.expect("create run");
    let claim = s
        .claim_extraction(&f.worker(0), T0, 30_000)
        .await
        .expect("claim")
        .expect("a pending run");
    s.complete_extraction(&claim, Some(&f.extraction_in_files(2, 5, &[3, 7])), T0)
        .await
        .expect("complete extraction");
    run.id
}

/// Loads both partitions of a [`two_file_run`]: row 2 fails, and with keys
/// row 7 repeats the key of row 6 (skipped by append).
async fn load_both<S: ContractStore>(s: &S, f: &Fixture, p: &Pipeline, run_id: RunId) {
    let target = f.target(p, run_id, vec![run_id]);
    s.prepare_destination(&target).await.expect("prepare");
    let key = |r: u64| if r == 7 { 6 } else { r };
    for (from, to, bad) in [(1, 5, vec![2]), (6, 10, vec![])] {
        let claim = s
            .claim_partition(&f.worker(1), T0, 60_000)
            .await
            .expect("claim")
            .expect("a partition");
        commit_rows(s, &claim, &target, from, to, &bad, key)
            .await
            .expect("commit");
    }
}

async fn run_files<S: ContractStore>(s: &S, p: &Pipeline, run_id: RunId) -> Vec<RunFile> {
    s.list_run_files(p.id, run_id, &PageRequest::default())
        .await
        .expect("run files")
        .items
}

/// Batch commits keep exact per-file counters even when a batch spans two
/// files; finalisation writes both files into the ledger in its transaction.
pub async fn batch_commits_count_rows_per_file_and_finalize_fills_the_ledger<S: ContractStore>(
    s: Arc<S>,
) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, true).await;
    let run_id = two_file_run(&*s, &f, &p).await;
    let before = run_files(&*s, &p, run_id).await;
    assert_eq!(before.len(), 2);
    assert!(before.iter().all(|f| f.status == RunFileStatus::Pending));
    assert_eq!(before[1].last_modified, Some(T0));
    load_both(&*s, &f, &p, run_id).await;
    let files = run_files(&*s, &p, run_id).await;
    let counts: Vec<_> = files
        .iter()
        .map(|f| {
            (
                f.key.as_str(),
                f.total_rows,
                f.loaded_rows,
                f.skipped_rows,
                f.failed_rows,
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("data/customers/f0.csv", 3, Some(2), Some(0), 1),
            ("data/customers/f1.csv", 7, Some(6), Some(1), 0),
        ]
    );
    assert!(files.iter().all(|f| f.status == RunFileStatus::Completed));
    let keys = vec![
        "data/customers/f0.csv".to_owned(),
        "data/customers/f1.csv".to_owned(),
    ];
    assert!(
        s.known_files(p.id, &keys).await.expect("known").is_empty(),
        "nothing is in the ledger before finalisation"
    );
    let done = s
        .finalize_ready_runs(T0.plus_millis(10))
        .await
        .expect("finalize");
    assert_eq!(done.len(), 1);
    let mut known = s.known_files(p.id, &keys).await.expect("known");
    known.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(known.len(), 2);
    assert_eq!(known[0].run_id, run_id);
    assert_eq!(known[1].version.etag.as_deref(), Some("\"e2\""));
    assert_eq!(known[1].version.size, 70);
    assert!(known[0].forgotten.is_none());
    let page = s
        .list_ledger(p.id, None, &PageRequest::default())
        .await
        .expect("ledger");
    assert_eq!(page.items.len(), 2);
    let f1 = page
        .items
        .iter()
        .find(|e| e.key.ends_with("f1.csv"))
        .expect("f1");
    assert_eq!(
        (
            f1.total_rows,
            f1.loaded_rows,
            f1.skipped_rows,
            f1.failed_rows
        ),
        (7, Some(6), Some(1), 0)
    );
    assert_eq!((f1.run_id, f1.loaded_at), (run_id, T0.plus_millis(10)));
    // Another pipeline's ledger is its own.
    let other = f.pipeline(&*s, "u", LoadStrategy::Append, false).await;
    assert!(
        s.known_files(other.id, &keys)
            .await
            .expect("known")
            .is_empty()
    );
}

/// A failed run writes nothing into the ledger; its files say how far they got.
pub async fn a_failed_run_leaves_the_ledger_alone<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let run_id = two_file_run(&*s, &f, &p).await;
    let target = f.target(&p, run_id, vec![run_id]);
    s.prepare_destination(&target).await.expect("prepare");
    let claim = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("a partition");
    commit_rows(&*s, &claim, &target, 1, 5, &[], |r| r)
        .await
        .expect("commit");
    let entry = sluice_domain::run::LogEntry {
        stage: sluice_domain::run::LogStage::Load,
        message: "boom".into(),
        timestamp: T0,
    };
    assert!(s.fail_run(run_id, &entry, T0).await.expect("fail"));
    let files = run_files(&*s, &p, run_id).await;
    assert_eq!(
        files.iter().map(|f| f.status).collect::<Vec<_>>(),
        vec![RunFileStatus::Completed, RunFileStatus::Failed]
    );
    assert_eq!(files[1].loaded_rows, Some(2));
    assert!(
        s.finalize_ready_runs(T0)
            .await
            .expect("finalize")
            .is_empty()
    );
    let page = s
        .list_ledger(p.id, None, &PageRequest::default())
        .await
        .expect("ledger");
    assert!(page.items.is_empty());
}

/// Forgotten entries count as absent in lists, stay visible (marked) to
/// lookups, and are replaced by the next load of the key.
pub async fn the_ledger_lists_newest_first_and_forgets<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let first = two_file_run(&*s, &f, &p).await;
    load_both(&*s, &f, &p, first).await;
    s.finalize_ready_runs(T0.plus_millis(10))
        .await
        .expect("finalize");
    let page = s
        .list_ledger(
            p.id,
            None,
            &PageRequest {
                limit: 1,
                cursor: None,
            },
        )
        .await
        .expect("page 1");
    assert_eq!(page.items.len(), 1);
    let cursor = page.next_cursor.clone().expect("a second page");
    assert!(cursor.chars().all(|c| c.is_ascii_digit()), "{cursor}");
    let rest = s
        .list_ledger(
            p.id,
            None,
            &PageRequest {
                limit: 1,
                cursor: Some(cursor),
            },
        )
        .await
        .expect("page 2");
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next_cursor, None);
    assert_ne!(page.items[0].key, rest.items[0].key);
    let only = s
        .list_ledger(p.id, Some("data/customers/f1"), &PageRequest::default())
        .await
        .expect("prefix");
    assert_eq!(only.items.len(), 1);
    assert!(only.items[0].key.ends_with("f1.csv"));
    let none = s
        .list_ledger(p.id, Some("data/customers/f_"), &PageRequest::default())
        .await
        .expect("prefix with a LIKE wildcard");
    assert!(none.items.is_empty(), "`_` is a literal in a prefix");

    let by = "key_01J9Z8Y7X6W5V4T3S2R1Q0P9NM";
    let gone = ForgetFiles::Key("data/customers/f0.csv".into());
    assert_eq!(
        s.forget_files(p.id, &gone, by, T0).await.expect("forget"),
        1
    );
    assert_eq!(s.forget_files(p.id, &gone, by, T0).await.expect("again"), 0);
    let all = ForgetFiles::Prefix("data/".into());
    assert_eq!(
        s.forget_files(p.id, &all, by, T0.plus_millis(5))
            .await
            .expect("prefix"),
        1
    );
    let listed = s
        .list_ledger(p.id, None, &PageRequest::default())
        .await
        .expect("ledger");
    assert!(listed.items.is_empty());
    let keys = vec!["data/customers/f0.csv".to_owned()];
    let known = s.known_files(p.id, &keys).await.expect("known");
    let mark = known[0].forgotten.clone().expect("marked forgotten");
    assert_eq!((mark.by.as_str(), mark.at), (by, T0));

    // The next load of the key replaces the forgotten entry and comes first.
    let second = two_file_run(&*s, &f, &p).await;
    load_both(&*s, &f, &p, second).await;
    s.finalize_ready_runs(T0.plus_millis(20))
        .await
        .expect("finalize");
    let known = s.known_files(p.id, &keys).await.expect("known");
    assert_eq!(known[0].run_id, second);
    assert!(known[0].forgotten.is_none());
    let listed = s
        .list_ledger(p.id, None, &PageRequest::default())
        .await
        .expect("ledger");
    assert_eq!(listed.items.len(), 2);
    assert!(listed.items.iter().all(|e| e.run_id == second));

    let missing = f.pipeline(&*s, "x", LoadStrategy::Append, false).await.id;
    s.delete_pipeline(missing).await.expect("delete");
    assert!(matches!(
        s.list_ledger(missing, None, &PageRequest::default()).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.forget_files(missing, &all, by, T0).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.list_run_files(missing, second, &PageRequest::default())
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

/// A resumable retry takes over its original's per-file loaded and skipped
/// counters; failed rows restart at 0 (they are revisited).
pub async fn a_resumable_retry_takes_over_per_file_counters<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, true).await;
    let run_id = two_file_run(&*s, &f, &p).await;
    load_both(&*s, &f, &p, run_id).await;
    s.finalize_ready_runs(T0).await.expect("finalize");
    let retry = crate::ports::NewRun {
        metadata: RunMetadata {
            retry_of: Some(run_id),
            ..RunMetadata::default()
        },
        ..f.new_run(&p)
    };
    s.create_retry_run(&retry, run_id, true)
        .await
        .expect("retry");
    let files = run_files(&*s, &p, retry.id).await;
    assert_eq!(
        files
            .iter()
            .map(|f| (f.loaded_rows, f.skipped_rows, f.failed_rows))
            .collect::<Vec<_>>(),
        vec![(Some(2), Some(0), 0), (Some(6), Some(1), 0)]
    );
}
