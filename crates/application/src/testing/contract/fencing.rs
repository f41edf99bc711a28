//! Contracts of the fenced writes, the two a lease holder makes to hand over
//! its work (`complete_extraction`, `commit_batch`): what a holder whose
//! claim no longer holds gets back, and what a destination that refuses a
//! row gets back. In both cases nothing is written.

use std::sync::Arc;

use sluice_domain::pipeline::LoadStrategy;
use sluice_domain::run::{LogEntry, LogStage};
use sluice_domain::status::RunStatus;

use super::fixtures::T0;
use super::queue::commit_rows;
use super::{ContractStore, Fixture};
use crate::ports::CommitError;

fn cancelled() -> LogEntry {
    LogEntry {
        stage: LogStage::Cancel,
        message: "Cancelled by a test".into(),
        timestamp: T0,
    }
}

/// An extraction completed, and a batch committed, after the run was
/// cancelled: both `Fenced`, and the run, its partitions and the destination
/// stay as the cancellation left them.
pub async fn writes_after_the_run_stopped_are_fenced<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let run = f.new_run(&p);
    s.create_run(&run).await.expect("create");
    let claim = s
        .claim_extraction(&f.worker(1), T0, 30_000)
        .await
        .expect("claim")
        .expect("claimed");
    s.cancel_run(run.id, T0, &cancelled())
        .await
        .expect("cancel");
    assert!(matches!(
        s.complete_extraction(&claim, Some(&f.extraction(2, 5)), T0)
            .await,
        Err(CommitError::Fenced(_))
    ));
    let r = s.get_run(p.id, run.id).await.expect("get");
    assert_eq!((r.status, r.total_rows), (RunStatus::Cancelled, None));
    assert!(s.list_partitions(run.id).await.expect("parts").is_empty());

    let q = f.pipeline(&*s, "u", LoadStrategy::Append, false).await;
    let run_id = f.running_run(&*s, &q, 1, 10).await;
    let target = f.target(&q, run_id, vec![run_id]);
    s.prepare_destination(&target).await.expect("prepare");
    let c = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("a partition");
    s.cancel_run(run_id, T0, &cancelled())
        .await
        .expect("cancel");
    assert!(matches!(
        commit_rows(&*s, &c, &target, 1, 10, &[], |r| r).await,
        Err(CommitError::Fenced(_))
    ));
    assert_eq!(s.table_rows("u").await.expect("table"), vec![]);
    let parts = s.list_partitions(run_id).await.expect("parts");
    assert_eq!(parts[0].checkpoint.row, 0, "the checkpoint did not move");
}

/// An existing table with a primary key of its own, loaded by `append`
/// without key columns: a batch repeating an id (within itself, or an id
/// already stored) is refused as `Destination`, naming the constraint, and
/// writes nothing; the claim still holds and a batch of new ids goes in.
pub async fn a_row_the_destination_refuses_is_a_destination_error<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f
        .pipeline(&*s, "existing", LoadStrategy::Append, false)
        .await;
    s.create_table_with_primary_key("existing").await;
    let run_id = f.running_run(&*s, &p, 1, 20).await;
    let target = f.target(&p, run_id, vec![run_id]);
    s.prepare_destination(&target)
        .await
        .expect("an existing table with a primary key can be loaded");
    let c = s
        .claim_partition(&f.worker(1), T0, 60_000)
        .await
        .expect("claim")
        .expect("a partition");
    commit_rows(&*s, &c, &target, 1, 5, &[], |r| r)
        .await
        .expect("distinct ids load");
    for key_of in [(|r| if r == 8 { 7 } else { r }) as fn(u64) -> u64, |r| {
        r - 5
    }] {
        match commit_rows(&*s, &c, &target, 6, 10, &[], key_of).await {
            Err(CommitError::Destination(message)) => assert!(
                message.contains("existing_pkey") && message.contains("(id)=("),
                "the message names the constraint and the key: {message}"
            ),
            other => panic!("a destination error expected, got {other:?}"),
        }
    }
    let rows = s.table_rows("existing").await.expect("table");
    assert_eq!(rows.len(), 5, "nothing of a refused batch is written");
    let parts = s.list_partitions(run_id).await.expect("parts");
    assert_eq!(parts[0].checkpoint.row, 5);
    assert_eq!(parts[0].counters.loaded, 5);
    commit_rows(&*s, &c, &target, 6, 10, &[], |r| r)
        .await
        .expect("the claim still holds");
    assert_eq!(s.table_rows("existing").await.expect("table").len(), 10);
}
