//! Contracts of the metadata ports: API keys, connectors, pipelines, runs.

use std::sync::Arc;

use sluice_domain::ids::{ApiKeyId, ConnectorId, PipelineId, RunId, Ulid};
use sluice_domain::pipeline::LoadStrategy;
use sluice_domain::role::Role;
use sluice_domain::run::{LogEntry, LogStage};
use sluice_domain::status::{PartitionStatus, RunStatus};

use super::fixtures::T0;
use super::{ContractStore, Fixture, newest_run};
use crate::ports::{ApiKey, NewApiKey, PageRequest, StoreError};

fn key(f: &Fixture, hash: &str) -> NewApiKey {
    NewApiKey {
        key: ApiKey {
            id: ApiKeyId::from_ulid(f.ulid()),
            name: "ci".into(),
            role: Role::Editor,
            prefix: "sk_abc".into(),
            created_at: T0,
            revoked_at: None,
        },
        secret_hash: hash.into(),
    }
}

/// Keys are found by hash until revoked; `ensure` is idempotent; lists page newest first.
pub async fn api_keys_round_trip<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let a = key(&f, "aa");
    s.insert_api_key(&a).await.expect("insert");
    assert_eq!(
        s.find_api_key_by_hash("aa").await.expect("find"),
        Some(a.key.clone())
    );
    assert_eq!(s.find_api_key_by_hash("zz").await.expect("find"), None);
    assert!(matches!(
        s.insert_api_key(&a).await,
        Err(StoreError::Conflict(_))
    ));

    let b = key(&f, "bb");
    assert!(s.ensure_api_key(&b).await.expect("ensure"));
    let b_again = key(&f, "bb");
    assert!(!s.ensure_api_key(&b_again).await.expect("ensure again"));

    let page = s
        .list_api_keys(&PageRequest {
            limit: 1,
            cursor: None,
        })
        .await
        .expect("list");
    assert_eq!(
        page.items.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![b.key.id]
    );
    let cursor = page.next_cursor.clone().expect("a second page");
    let page2 = s
        .list_api_keys(&PageRequest {
            limit: 1,
            cursor: Some(cursor),
        })
        .await
        .expect("list");
    assert_eq!(
        page2.items.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![a.key.id]
    );
    assert_eq!(page2.next_cursor, None);

    s.revoke_api_key(a.key.id, T0.plus_millis(5))
        .await
        .expect("revoke");
    assert_eq!(s.find_api_key_by_hash("aa").await.expect("find"), None);
    let listed = s
        .list_api_keys(&PageRequest::default())
        .await
        .expect("list");
    assert_eq!(
        listed
            .items
            .iter()
            .find(|k| k.id == a.key.id)
            .and_then(|k| k.revoked_at),
        Some(T0.plus_millis(5))
    );
    let missing = ApiKeyId::from_ulid(f.ulid());
    assert!(matches!(
        s.revoke_api_key(missing, T0).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Connectors keep their secrets apart; deleting one in use conflicts.
pub async fn connectors_round_trip<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let (mut c, creds) = f.connector();
    s.insert_connector(&c, &creds).await.expect("insert");
    assert_eq!(s.get_connector(c.id).await.expect("get"), c);
    assert_eq!(
        s.connector_credentials(c.id)
            .await
            .expect("creds")
            .get("secretAccessKey"),
        Some("s3cr3t-value")
    );
    assert!(matches!(
        s.insert_connector(&c, &creds).await,
        Err(StoreError::Conflict(_))
    ));

    c.name = "Renamed".into();
    s.update_connector(&c, None).await.expect("update");
    assert_eq!(s.get_connector(c.id).await.expect("get").name, "Renamed");
    assert_eq!(
        s.connector_credentials(c.id)
            .await
            .expect("creds")
            .get("secretAccessKey"),
        Some("s3cr3t-value")
    );
    let new_creds = sluice_domain::connector::Credentials::new(
        [("token".to_owned(), "t2".to_owned())]
            .into_iter()
            .collect(),
    );
    s.update_connector(&c, Some(&new_creds))
        .await
        .expect("update creds");
    assert_eq!(
        s.connector_credentials(c.id).await.expect("creds"),
        new_creds
    );

    let (c2, creds2) = f.connector();
    s.insert_connector(&c2, &creds2).await.expect("insert 2");
    let page = s
        .list_connectors(&PageRequest {
            limit: 10,
            cursor: None,
        })
        .await
        .expect("list");
    assert_eq!(
        page.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![c2.id, c.id]
    );

    let p = sluice_domain::pipeline::Pipeline {
        id: PipelineId::from_ulid(f.ulid()),
        spec: f.spec(c.id, "t", LoadStrategy::Append, false),
        created_at: T0,
        updated_at: T0,
    };
    s.insert_pipeline(&p).await.expect("pipeline");
    assert!(matches!(
        s.delete_connector(c.id).await,
        Err(StoreError::Conflict(_))
    ));
    s.delete_connector(c2.id).await.expect("delete unused");
    assert!(matches!(
        s.get_connector(c2.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_connector(c2.id).await,
        Err(StoreError::NotFound { .. })
    ));
    let ghost = ConnectorId::from_ulid(f.ulid());
    assert!(matches!(
        s.connector_credentials(ghost).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Pipelines need their connector; deleting one removes its runs but not while a run is active.
pub async fn pipelines_round_trip<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let ghost = sluice_domain::pipeline::Pipeline {
        id: PipelineId::from_ulid(f.ulid()),
        spec: f.spec(
            ConnectorId::from_ulid(f.ulid()),
            "t",
            LoadStrategy::Append,
            false,
        ),
        created_at: T0,
        updated_at: T0,
    };
    match s.insert_pipeline(&ghost).await {
        Err(StoreError::NotFound { entity, .. }) => assert_eq!(entity, "connector"),
        other => panic!("expected connector not found, got {other:?}"),
    }
    let mut p = f
        .pipeline(&*s, "customers", LoadStrategy::Upsert, true)
        .await;
    assert_eq!(s.get_pipeline(p.id).await.expect("get"), p);
    p.spec.partitions = 8;
    p.updated_at = T0.plus_millis(1);
    s.update_pipeline(&p).await.expect("update");
    assert_eq!(s.get_pipeline(p.id).await.expect("get").spec.partitions, 8);
    let p2 = f.pipeline(&*s, "orders", LoadStrategy::Append, false).await;
    let page = s
        .list_pipelines(&PageRequest {
            limit: 1,
            cursor: None,
        })
        .await
        .expect("list");
    assert_eq!(page.items[0].id, p2.id);
    assert!(page.next_cursor.is_some());

    let run = f.new_run(&p);
    s.create_run(&run).await.expect("run");
    assert!(matches!(
        s.delete_pipeline(p.id).await,
        Err(StoreError::Conflict(_))
    ));
    let entry = LogEntry {
        stage: LogStage::Cancel,
        message: "Cancelled".into(),
        timestamp: T0,
    };
    s.cancel_run(run.id, T0, &entry).await.expect("cancel");
    s.delete_pipeline(p.id).await.expect("delete");
    assert!(matches!(
        s.get_pipeline(p.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.get_run(p.id, run.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_pipeline(p.id).await,
        Err(StoreError::NotFound { .. })
    ));
    let mut missing = p2.clone();
    missing.id = PipelineId::from_ulid(f.ulid());
    assert!(matches!(
        s.update_pipeline(&missing).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// At most one pending or running run per pipeline, enforced atomically.
pub async fn one_active_run_per_pipeline<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    // Many concurrent starts: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        let run = f.new_run(&p);
        tasks.push(tokio::spawn(async move { s.create_run(&run).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    let ghost_pipeline = sluice_domain::pipeline::Pipeline {
        id: PipelineId::from_ulid(f.ulid()),
        ..p.clone()
    };
    assert!(matches!(
        s.create_run(&f.new_run(&ghost_pipeline)).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Runs list newest first, per pipeline; `get_run` checks the pipeline; logs keep order.
pub async fn runs_are_listed_newest_first_and_scoped_to_their_pipeline<S: ContractStore>(
    s: Arc<S>,
) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let other = f.pipeline(&*s, "u", LoadStrategy::Append, false).await;
    let entry = |m: &str| LogEntry {
        stage: LogStage::Cancel,
        message: m.into(),
        timestamp: T0,
    };
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut run = f.new_run(&p);
        run.log = vec![LogEntry {
            stage: LogStage::Poll,
            message: format!("first {i}"),
            timestamp: T0,
        }];
        s.create_run(&run).await.expect("create");
        s.append_log(run.id, &entry("second")).await.expect("log");
        s.cancel_run(run.id, T0, &entry("third"))
            .await
            .expect("cancel");
        ids.push(run.id);
    }
    let page = s
        .list_runs(
            p.id,
            &PageRequest {
                limit: 2,
                cursor: None,
            },
        )
        .await
        .expect("list");
    assert_eq!(
        page.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1]]
    );
    let rest = s
        .list_runs(
            p.id,
            &PageRequest {
                limit: 2,
                cursor: page.next_cursor,
            },
        )
        .await
        .expect("list");
    assert_eq!(
        rest.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
    assert_eq!(rest.next_cursor, None);
    assert_eq!(newest_run(&*s, p.id).await.map(|r| r.id), Some(ids[2]));
    assert_eq!(newest_run(&*s, other.id).await, None);
    assert!(matches!(
        s.get_run(other.id, ids[0]).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.run_pipeline(ids[0]).await.expect("its pipeline"), p.id);
    assert!(matches!(
        s.run_pipeline(RunId::from_ulid(Ulid(7))).await,
        Err(StoreError::NotFound { .. })
    ));
    let run = s.get_run(p.id, ids[0]).await.expect("get");
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(run.total_rows, None);
    let log = s.run_log(ids[0]).await.expect("log");
    assert_eq!(
        log.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        vec!["first 0", "second", "third"]
    );
    assert_eq!(s.run_spec(ids[0]).await.expect("spec"), p.spec);
    let ghost = RunId::from_ulid(f.ulid());
    assert!(matches!(
        s.append_log(ghost, &entry("x")).await,
        Err(StoreError::NotFound { .. })
    ));
    let counts = s.count_runs_by_status().await.expect("counts");
    assert!(counts.contains(&(RunStatus::Cancelled, 3)));
    s.ping().await.expect("ping");
}

/// Cancelling moves pending or running runs to `cancelled` and refuses terminal ones.
pub async fn cancel_is_a_checked_transition<S: ContractStore>(s: Arc<S>) {
    let f = Fixture::new();
    let p = f.pipeline(&*s, "t", LoadStrategy::Append, false).await;
    let run_id = f.running_run(&*s, &p, 2, 10).await;
    let entry = LogEntry {
        stage: LogStage::Cancel,
        message: "Cancelled by key_x".into(),
        timestamp: T0,
    };
    s.cancel_run(run_id, T0.plus_millis(10), &entry)
        .await
        .expect("cancel");
    let run = s.get_run(p.id, run_id).await.expect("get");
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(run.finished_at, Some(T0.plus_millis(10)));
    assert!(
        s.list_partitions(run_id)
            .await
            .expect("parts")
            .iter()
            .all(|x| x.status == PartitionStatus::Failed)
    );
    assert!(matches!(
        s.cancel_run(run_id, T0, &entry).await,
        Err(StoreError::Unprocessable(_))
    ));
    assert!(
        s.claim_partition(&f.worker(1), T0, 1000)
            .await
            .expect("claim")
            .is_none()
    );
    let ghost = RunId::from_ulid(f.ulid());
    assert!(matches!(
        s.cancel_run(ghost, T0, &entry).await,
        Err(StoreError::NotFound { .. })
    ));
}
