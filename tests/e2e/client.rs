//! Issue 20, acceptance 4: `sluice-client` against the real server, one
//! test per operation group (keys, connectors and pipelines, runs, the file
//! ledger, polling and health), typed answers and typed errors.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use sluice_client::domain::ids::{PipelineId, RunId};
use sluice_client::domain::ledger::FileSelection;
use sluice_client::domain::pipeline::PipelineStatus;
use sluice_client::domain::role::Role;
use sluice_client::domain::status::RunStatus;
use sluice_client::types::StartRunRequest;
use sluice_client::{Client, Error, ExportFormat, ForgetFiles, PageParams};

use crate::support::{Api, Launch, Process, SluiceMigrations, TestDb};

/// A server whose local connectors may read `root`, and a client of it.
async fn server(db: &TestDb, root: &Path) -> (Process, Api, Client) {
    let (process, api) = Launch::new(db)
        .workers(2)
        .var("SLUICE_LOCAL_ROOTS", root.to_str().expect("utf-8"))
        .var("SLUICE_POLL_TICK_SECONDS", "3600")
        .serve()
        .await;
    let client = Client::new(&api.base, api.key.clone()).expect("client");
    (process, api, client)
}

fn csv(rows: u64, bad_every: u64) -> String {
    let mut s = String::from("id,note\n");
    for n in 1..=rows {
        if n % bad_every == 0 {
            s.push_str(&format!("bad{n},x\n"));
        } else {
            s.push_str(&format!("{n},x\n"));
        }
    }
    s
}

/// A local connector over `root` and an append pipeline over its `*.csv`.
async fn pipeline(
    client: &Client,
    root: &Path,
    name: &str,
    extra: serde_json::Value,
) -> PipelineId {
    let connector = client
        .create_connector(
            &json!({"name": format!("{name} files"), "type": "local", "config": {"root": root}}),
        )
        .await
        .expect("create connector");
    let mut spec = json!({
        "name": name,
        "connectorId": connector.id,
        "source": {"prefix": "", "pattern": "*.csv"},
        "schema": {"columns": [
            {"name": "id", "type": "integer", "required": true},
            {"name": "note", "type": "string"}
        ]},
        "destination": {"table": name},
        "loadStrategy": "append",
        "partitions": 2
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    client
        .create_pipeline(&spec)
        .await
        .expect("create pipeline")
        .id
}

/// Follows a run to its end through `watch`; returns the last status.
async fn finish(client: &Client, pipeline: PipelineId, run: RunId) -> RunStatus {
    let snapshots = client.watch(pipeline, run, Duration::from_millis(100));
    let mut snapshots = std::pin::pin!(snapshots);
    let mut last = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while let Some(s) = tokio::time::timeout_at(deadline, snapshots.next())
        .await
        .expect("the run ends within 2 minutes")
    {
        last = Some(s.expect("progress").status);
    }
    last.expect("at least one snapshot")
}

#[tokio::test(flavor = "multi_thread")]
async fn client_keys_identity_and_typed_errors() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let dir = tempfile::tempdir().expect("dir");
    let (_server, _api, admin) = server(&db, dir.path()).await;

    let me = admin.me().await.expect("me");
    assert_eq!(me.role, Role::Admin);
    let created = admin
        .create_api_key("client test", Role::Viewer)
        .await
        .expect("create key");
    assert!(created.key.starts_with("sk_"));
    let listed = admin
        .list_api_keys(&PageParams::first(200))
        .await
        .expect("list keys");
    let found = listed
        .items
        .iter()
        .find(|k| k.id == created.id)
        .expect("listed");
    assert_eq!(found.role, Role::Viewer);
    assert!(found.revoked_at.is_none());

    let viewer = Client::new(admin.base_url(), created.key.clone()).expect("client");
    assert_eq!(viewer.me().await.expect("me").key_id, created.id);
    // A 403 carries the API's code and message and the roles that may.
    let refused = viewer
        .create_api_key("nope", Role::Admin)
        .await
        .expect_err("a viewer may not create keys");
    let api = refused.api().expect("an API error");
    assert_eq!(api.status, 403);
    assert_eq!(api.allowed_roles, Some(&[Role::Admin][..]));
    assert!(
        refused.to_string().contains("(this needs an admin key)"),
        "{refused}"
    );

    admin.revoke_api_key(created.id).await.expect("revoke");
    let after = viewer.me().await;
    // The server remembers found keys for up to SLUICE_AUTH_CACHE_MS.
    let after = match after {
        Ok(_) => {
            tokio::time::sleep(Duration::from_millis(2_100)).await;
            viewer.me().await
        }
        e => e,
    };
    let err = after.expect_err("a revoked key is refused");
    assert_eq!(err.api().map(|a| a.status), Some(401), "{err}");

    let missing = admin
        .get_pipeline(PipelineId::parse("pipe_01ARZ3NDEKTSV4RRFFQ69G5FAV").expect("id"))
        .await
        .expect_err("no such pipeline");
    assert!(missing.api().is_some_and(|a| a.is_not_found()), "{missing}");

    let down = Client::new("http://127.0.0.1:9", "sk_x").expect("client");
    assert!(matches!(down.me().await, Err(Error::Transport { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_connectors_and_pipelines() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("a.csv"), csv(50, 10)).expect("write");
    let (_server, _api, client) = server(&db, dir.path()).await;

    let connector = client
        .create_connector(
            &json!({"name": "Files", "type": "local", "config": {"root": dir.path()}}),
        )
        .await
        .expect("create");
    let page = client
        .list_connectors(&PageParams::default())
        .await
        .expect("list");
    assert!(page.items.iter().any(|c| c.id == connector.id));
    assert_eq!(
        client.get_connector(connector.id).await.expect("get").name,
        "Files"
    );
    let renamed = client
        .update_connector(connector.id, &json!({"name": "Landing"}))
        .await
        .expect("patch");
    assert_eq!(renamed.name, "Landing");
    let check = client.test_connector(connector.id).await.expect("test");
    assert!(check.ok, "{}", check.message);

    let spec = json!({
        "name": "client_pipelines",
        "connectorId": connector.id,
        "source": {"prefix": "", "pattern": "*.csv"},
        "schema": {"columns": [{"name": "id", "type": "integer", "required": true}, {"name": "note", "type": "string"}]},
        "destination": {"table": "client_pipelines"},
        "loadStrategy": "append"
    });
    let pipeline = client.create_pipeline(&spec).await.expect("create");
    let listed = client
        .list_pipelines(&PageParams::first(10))
        .await
        .expect("list");
    assert!(listed.items.iter().any(|p| p.id == pipeline.id));
    assert_eq!(
        client
            .get_pipeline(pipeline.id)
            .await
            .expect("get")
            .spec
            .name,
        "client_pipelines"
    );
    let dry = client
        .dry_run(pipeline.id, Some(100))
        .await
        .expect("dry run");
    assert_eq!(
        (dry.rows_checked, dry.valid_rows, dry.failed_rows),
        (50, 45, 5)
    );
    assert!(dry.complete);
    let paused = client
        .update_pipeline(pipeline.id, &json!({"status": "paused"}))
        .await
        .expect("pause");
    assert_eq!(paused.spec.status, PipelineStatus::Paused);
    let invalid = client
        .update_pipeline(pipeline.id, &json!({"partitions": 0}))
        .await
        .expect_err("0 partitions");
    assert!(
        invalid
            .api()
            .is_some_and(|a| a.status == 422 || a.status == 400),
        "{invalid}"
    );

    let in_use = client
        .delete_connector(connector.id)
        .await
        .expect_err("a pipeline uses it");
    assert_eq!(in_use.api().map(|a| a.status), Some(409), "{in_use}");
    client
        .delete_pipeline(pipeline.id)
        .await
        .expect("delete pipeline");
    client
        .delete_connector(connector.id)
        .await
        .expect("delete connector");
    assert!(
        client
            .get_connector(connector.id)
            .await
            .expect_err("gone")
            .api()
            .is_some_and(|a| a.is_not_found())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_runs_progress_errors_and_retry() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("a.csv"), csv(2_000, 100)).expect("write");
    let (_server, api, client) = server(&db, dir.path()).await;
    let pipeline = pipeline(&client, dir.path(), "client_runs", json!({})).await;

    let run = client.start_run(pipeline).await.expect("start");
    assert_eq!(
        finish(&client, pipeline, run.id).await,
        RunStatus::CompletedWithErrors
    );
    let got = client.get_run(pipeline, run.id).await.expect("get run");
    assert_eq!((got.loaded_rows, got.failed_rows), (1_980, 20));
    assert_eq!(
        client.find_run(run.id).await.expect("find").pipeline_id,
        pipeline
    );
    let runs = client
        .list_runs(pipeline, &PageParams::default())
        .await
        .expect("list runs");
    assert_eq!(runs.items.len(), 1);
    let progress = client
        .run_progress(pipeline, run.id)
        .await
        .expect("progress");
    assert_eq!(progress.failed_rows, 20);

    // Rejected rows: page by page, as a stream of rows, and the exports.
    let page = client
        .run_errors_page(pipeline, run.id, &PageParams::first(7))
        .await
        .expect("page");
    assert_eq!((page.total, page.errors.len()), (20, 7));
    let rows: Vec<_> = client
        .run_errors(pipeline, run.id, 3)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|r| r.expect("row").row)
        .collect();
    assert_eq!(rows, (1..=20).map(|n| n * 100).collect::<Vec<u64>>());
    let mut csv_bytes = Vec::new();
    let written = client
        .write_errors(pipeline, run.id, ExportFormat::Csv, &mut csv_bytes)
        .await
        .expect("csv");
    assert_eq!(written as usize, csv_bytes.len());
    let direct = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/pipelines/{pipeline}/runs/{}/errors",
            api.base, run.id
        ))
        .bearer_auth(&api.key)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("direct")
        .bytes()
        .await
        .expect("body");
    assert_eq!(csv_bytes, direct.as_ref(), "the CSV export byte for byte");
    let json_chunks: Vec<_> = client
        .export_errors(pipeline, run.id, ExportFormat::Json)
        .await
        .expect("json export")
        .collect()
        .await;
    let json_bytes: Vec<u8> = json_chunks
        .into_iter()
        .flat_map(|c| c.expect("chunk").to_vec())
        .collect();
    let export: sluice_client::types::RunErrorsResponse =
        serde_json::from_slice(&json_bytes).expect("the JSON export parses");
    assert_eq!(export.errors.len(), 20);

    // Retry resumes; a run that ended cannot be cancelled.
    let retry = client.retry_run(pipeline, run.id).await.expect("retry");
    assert_eq!(retry.metadata.retry_of, run.id);
    finish(&client, pipeline, retry.id).await;
    let cancel = client
        .cancel_run(pipeline, run.id)
        .await
        .expect_err("the run ended");
    assert_eq!(cancel.api().map(|a| a.status), Some(422), "{cancel}");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_file_ledger_forget_and_forced_reloads() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("in 2024")).expect("dir");
    std::fs::write(dir.path().join("a.csv"), csv(10, 1_000)).expect("write");
    std::fs::write(dir.path().join("b.csv"), csv(20, 1_000)).expect("write");
    let (_server, _api, client) = server(&db, dir.path()).await;
    let pipeline = pipeline(&client, dir.path(), "client_ledger", json!({})).await;

    let first = client.start_run(pipeline).await.expect("start");
    assert_eq!(
        finish(&client, pipeline, first.id).await,
        RunStatus::Completed
    );
    let ledger = client
        .list_files(pipeline, None, &PageParams::default())
        .await
        .expect("ledger");
    let mut keys: Vec<_> = ledger
        .items
        .iter()
        .map(|f| (f.key.clone(), f.total_rows))
        .collect();
    keys.sort();
    assert_eq!(keys, [("a.csv".to_owned(), 10), ("b.csv".to_owned(), 20)]);
    let only_b = client
        .list_files(pipeline, Some("b"), &PageParams::default())
        .await
        .expect("prefix");
    assert_eq!(only_b.items.len(), 1);
    // A prefix with characters that need escaping matches nothing, and is no error.
    let none = client
        .list_files(pipeline, Some("in 2024/&x=1"), &PageParams::default())
        .await
        .expect("escaped prefix");
    assert!(none.items.is_empty());
    let files = client
        .run_files(pipeline, first.id, &PageParams::default())
        .await
        .expect("run files");
    assert_eq!(files.items.len(), 2);

    // Forget one file: the next run reads it alone.
    let forgot = client
        .forget_files(pipeline, &ForgetFiles::Key("a.csv".into()))
        .await
        .expect("forget");
    assert_eq!(forgot.forgotten, 1);
    let second = client.start_run(pipeline).await.expect("start");
    finish(&client, pipeline, second.id).await;
    let got = client.get_run(pipeline, second.id).await.expect("run");
    assert_eq!(got.loaded_rows, 10, "only a.csv again");

    // A forced reload of everything, and a reload of one key.
    let all = StartRunRequest {
        files: Some(FileSelection::All),
        reload: None,
    };
    let third = client.start_run_with(pipeline, &all).await.expect("all");
    finish(&client, pipeline, third.id).await;
    assert_eq!(
        client
            .get_run(pipeline, third.id)
            .await
            .expect("run")
            .loaded_rows,
        30
    );
    let one = StartRunRequest {
        files: None,
        reload: Some(vec!["b.csv".into()]),
    };
    let fourth = client.start_run_with(pipeline, &one).await.expect("reload");
    finish(&client, pipeline, fourth.id).await;
    assert_eq!(
        client
            .get_run(pipeline, fourth.id)
            .await
            .expect("run")
            .loaded_rows,
        20
    );
    let forgot = client
        .forget_files(pipeline, &ForgetFiles::Prefix(String::new()))
        .await
        .expect("forget all");
    assert_eq!(forgot.forgotten, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_polling_health_and_document() {
    let db = TestDb::migrated(&SluiceMigrations).await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("a.csv"), csv(5, 1_000)).expect("write");
    let (_server, _api, client) = server(&db, dir.path()).await;
    let polling =
        json!({"polling": {"enabled": true, "intervalMinutes": 1, "touchFile": "_READY"}});
    let pipeline = pipeline(&client, dir.path(), "client_polling", polling).await;

    let status = client.poll_status().await.expect("poll status");
    assert!(
        status.pipelines.iter().any(|p| p.id == pipeline),
        "{status:?}"
    );
    let idle = client.poll_now().await.expect("poll now");
    assert_eq!(idle.triggered, 0, "no touch file yet: {}", idle.message);
    std::fs::write(dir.path().join("_READY"), "").expect("touch");
    let cycle = client.poll_now().await.expect("poll now");
    assert_eq!(cycle.triggered, 1, "{}", cycle.message);
    let runs = client
        .list_runs(pipeline, &PageParams::default())
        .await
        .expect("runs");
    assert_eq!(runs.items.len(), 1);

    let anonymous = Client::anonymous(client.base_url()).expect("anonymous");
    assert!(anonymous.ready().await.expect("readyz"));
    let doc = anonymous.openapi().await.expect("openapi");
    assert!(doc["paths"]["/api/v1/pipelines/{id}/files"].is_object());
    let refused = anonymous.me().await.expect_err("no key");
    assert_eq!(refused.api().map(|a| a.status), Some(401), "{refused}");
}
