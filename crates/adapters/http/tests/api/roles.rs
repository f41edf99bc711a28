//! The role matrix: every endpoint with no key, an unknown key, and a key of
//! each role, against the role table of `docs/api.md` (written
//! out here independently of the code's own permission table).

use actix_web::http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_domain::role::Role;

use crate::support::{RunEnd, RunPlan, TestApi, UNKNOWN_KEY, id_of, pipeline_spec};

const ADMIN: &[Role] = &[Role::Admin];
const WRITERS: &[Role] = &[Role::Admin, Role::Editor];
const ALL: &[Role] = &[Role::Admin, Role::Editor, Role::Viewer];

/// Entities every case can act on.
struct World {
    /// A connector used by pipelines.
    connector: String,
    /// A connector no pipeline uses (to change, test or delete).
    spare_connector: String,
    /// A pipeline whose only run failed (start, retry, read).
    pipeline: String,
    /// Its failed run, with validation errors.
    failed_run: String,
    /// A pipeline without runs (to change or delete).
    spare_pipeline: String,
    /// A pipeline with a pending run (to cancel).
    busy_pipeline: String,
    /// The pending run.
    pending_run: String,
    /// An API key to revoke.
    spare_key: String,
    /// A webhook subscription with one delivery attempt.
    webhook: String,
    /// That attempt.
    delivery: String,
}

async fn world(api: &TestApi) -> World {
    let webhook = crate::webhooks::webhook(api).await;
    let connector = api.connector("Production S3").await;
    let spare_connector = api.connector("Spare S3").await;
    let pipeline = api.pipeline(&connector, json!({})).await;
    let failed_run = api.run(&pipeline, RunPlan::sample(RunEnd::Fail)).await;
    let spare_pipeline = api
        .pipeline(
            &connector,
            json!({"name": "Spare", "destination": {"table": "spare"}}),
        )
        .await;
    let busy_pipeline = api
        .pipeline(
            &connector,
            json!({"name": "Busy", "destination": {"table": "busy"}}),
        )
        .await;
    let pending_run = api.start_run(&busy_pipeline).await;
    let spare_key = id_of(
        &api.admin_post(
            "/api/v1/api-keys",
            Some(json!({"name": "spare", "role": "viewer"})),
            StatusCode::CREATED,
        )
        .await,
    );
    let delivery = crate::webhooks::delivery(api).await;
    World {
        webhook,
        delivery,
        connector,
        spare_connector,
        pipeline,
        failed_run,
        spare_pipeline,
        busy_pipeline,
        pending_run,
        spare_key,
    }
}

/// One endpoint: request, roles allowed, status on success.
struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    allowed: &'static [Role],
    ok: StatusCode,
}

fn case(
    method: Method,
    path: String,
    body: Option<Value>,
    allowed: &'static [Role],
    ok: u16,
) -> Case {
    Case {
        method,
        path,
        body,
        allowed,
        ok: StatusCode::from_u16(ok).expect("status"),
    }
}

fn cases(w: &World) -> Vec<Case> {
    let p = &w.pipeline;
    let run = format!("/api/v1/pipelines/{p}/runs/{}", w.failed_run);
    let connector_body = json!({"name": "New", "type": "local", "config": {"root": "./data"}});
    vec![
        case(Method::GET, "/api/v1/me".into(), None, ALL, 200),
        case(
            Method::GET,
            format!("/api/v1/runs/{}", w.failed_run),
            None,
            ALL,
            200,
        ),
        case(Method::GET, "/api/v1/api-keys".into(), None, ADMIN, 200),
        case(
            Method::POST,
            "/api/v1/api-keys".into(),
            Some(json!({"name": "ci", "role": "editor"})),
            ADMIN,
            201,
        ),
        case(
            Method::DELETE,
            format!("/api/v1/api-keys/{}", w.spare_key),
            None,
            ADMIN,
            204,
        ),
        case(Method::GET, "/api/v1/connectors".into(), None, ALL, 200),
        case(
            Method::POST,
            "/api/v1/connectors".into(),
            Some(connector_body),
            ADMIN,
            201,
        ),
        case(
            Method::GET,
            format!("/api/v1/connectors/{}", w.connector),
            None,
            ALL,
            200,
        ),
        case(
            Method::PATCH,
            format!("/api/v1/connectors/{}", w.spare_connector),
            Some(json!({"name": "Renamed"})),
            ADMIN,
            200,
        ),
        case(
            Method::DELETE,
            format!("/api/v1/connectors/{}", w.spare_connector),
            None,
            ADMIN,
            204,
        ),
        case(
            Method::POST,
            format!("/api/v1/connectors/{}/test", w.spare_connector),
            None,
            ADMIN,
            200,
        ),
        case(Method::GET, "/api/v1/pipelines".into(), None, ALL, 200),
        case(
            Method::POST,
            "/api/v1/pipelines".into(),
            Some(pipeline_spec(&w.connector)),
            WRITERS,
            201,
        ),
        case(
            Method::GET,
            format!("/api/v1/pipelines/{p}"),
            None,
            ALL,
            200,
        ),
        case(
            Method::PATCH,
            format!("/api/v1/pipelines/{}", w.spare_pipeline),
            Some(json!({"status": "paused"})),
            WRITERS,
            200,
        ),
        case(
            Method::DELETE,
            format!("/api/v1/pipelines/{}", w.spare_pipeline),
            None,
            WRITERS,
            204,
        ),
        // The pipeline's newest run failed after committing rows: a new
        // run must force the reload (or the failed run be retried).
        case(
            Method::POST,
            format!("/api/v1/pipelines/{p}/runs"),
            Some(json!({"files": "all"})),
            WRITERS,
            201,
        ),
        case(
            Method::GET,
            format!("/api/v1/pipelines/{p}/files"),
            None,
            ALL,
            200,
        ),
        case(
            Method::DELETE,
            format!("/api/v1/pipelines/{p}/files?prefix=data/"),
            None,
            WRITERS,
            200,
        ),
        case(Method::GET, format!("{run}/files"), None, ALL, 200),
        case(
            Method::GET,
            format!("/api/v1/pipelines/{p}/runs"),
            None,
            ALL,
            200,
        ),
        case(Method::GET, run.clone(), None, ALL, 200),
        case(
            Method::POST,
            format!(
                "/api/v1/pipelines/{}/runs/{}/cancel",
                w.busy_pipeline, w.pending_run
            ),
            None,
            WRITERS,
            200,
        ),
        case(Method::GET, format!("{run}/progress"), None, ALL, 200),
        case(Method::GET, format!("{run}/errors"), None, ALL, 200),
        case(Method::POST, format!("{run}/retry"), None, WRITERS, 201),
        case(Method::GET, "/api/v1/pipelines/poll".into(), None, ALL, 200),
        case(
            Method::POST,
            "/api/v1/pipelines/poll".into(),
            None,
            WRITERS,
            200,
        ),
        case(Method::GET, "/api/v1/webhooks".into(), None, ADMIN, 200),
        case(
            Method::POST,
            "/api/v1/webhooks".into(),
            Some(crate::webhooks::webhook_body(
                "https://hooks.example.com/new",
            )),
            ADMIN,
            201,
        ),
        case(
            Method::GET,
            format!("/api/v1/webhooks/{}", w.webhook),
            None,
            ADMIN,
            200,
        ),
        case(
            Method::PATCH,
            format!("/api/v1/webhooks/{}", w.webhook),
            Some(json!({"enabled": false})),
            ADMIN,
            200,
        ),
        case(
            Method::DELETE,
            format!("/api/v1/webhooks/{}", w.webhook),
            None,
            ADMIN,
            204,
        ),
        case(
            Method::GET,
            format!("/api/v1/webhooks/{}/deliveries", w.webhook),
            None,
            ADMIN,
            200,
        ),
        case(
            Method::POST,
            format!(
                "/api/v1/webhooks/{}/deliveries/{}/redeliver",
                w.webhook, w.delivery
            ),
            None,
            ADMIN,
            202,
        ),
    ]
}

fn describe(c: &Case) -> String {
    format!("{} {}", c.method, c.path)
}

#[actix_web::test]
async fn every_endpoint_answers_401_403_or_2xx_by_role() {
    let probe = TestApi::new().await;
    let probe_cases = cases(&world(&probe).await);
    let count = probe_cases.len();
    assert_eq!(
        count, 35,
        "every authenticated endpoint of the role table, `/me`, `/runs/{{runId}}` and the file ledger's"
    );
    // Without a valid key: 401 everywhere, with the JSON error body.
    for c in probe_cases {
        for key in [None, Some(UNKNOWN_KEY)] {
            let reply = probe
                .send(c.method.clone(), &c.path, key, c.body.clone())
                .await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{} key {key:?}",
                describe(&c)
            );
            assert_eq!(reply.json()["error"]["code"], "unauthorized");
        }
    }
    // With each role, in a fresh world so that writes do not disturb each other.
    for i in 0..count {
        for role in Role::ALL {
            let api = TestApi::new().await;
            let w = world(&api).await;
            let c = cases(&w).into_iter().nth(i).expect("case");
            let reply = api
                .send(
                    c.method.clone(),
                    &c.path,
                    Some(api.key(role)),
                    c.body.clone(),
                )
                .await;
            if c.allowed.contains(&role) {
                assert_eq!(
                    reply.status,
                    c.ok,
                    "{} as {role}: {}",
                    describe(&c),
                    reply.text()
                );
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::FORBIDDEN,
                    "{} as {role}: {}",
                    describe(&c),
                    reply.text()
                );
                assert_eq!(reply.json()["error"]["code"], "forbidden");
            }
        }
    }
}

#[actix_web::test]
async fn me_names_the_callers_key_and_role() {
    let api = TestApi::new().await;
    for role in Role::ALL {
        let reply = api.get("/api/v1/me", role).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let v = reply.json();
        assert_eq!(v["role"], role.as_str(), "{v}");
        assert!(
            v["keyId"].as_str().is_some_and(|id| id.starts_with("key_")),
            "{v}"
        );
        assert_eq!(v.as_object().map(|o| o.len()), Some(2), "{v}");
    }
}

#[actix_web::test]
async fn health_metrics_and_the_document_need_no_key() {
    let api = TestApi::new().await;
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
        for key in [None, Some(UNKNOWN_KEY), Some(api.viewer.as_str())] {
            let reply = api.send(Method::GET, path, key, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{path} with {key:?}");
        }
    }
}

/// Decision 0013: a caller without the role is refused before the route
/// reads its body or query string (403 whatever it sends), while a caller
/// with the role gets the 400 for the same input.
#[actix_web::test]
async fn a_role_too_low_is_refused_before_the_input_is_read() {
    let api = TestApi::new().await;
    let c = api.connector("Production S3").await;
    let p = api.pipeline(&c, json!({})).await;
    let cases = [
        (
            Method::POST,
            format!("/api/v1/pipelines/{p}/dry-run?rows=abc"),
            None,
            Role::Viewer,
            Role::Editor,
        ),
        (
            Method::GET,
            "/api/v1/api-keys?limit=0".to_owned(),
            None,
            Role::Editor,
            Role::Admin,
        ),
        (
            Method::POST,
            "/api/v1/api-keys".to_owned(),
            Some(json!({"name": 1})),
            Role::Editor,
            Role::Admin,
        ),
        (
            Method::POST,
            "/api/v1/pipelines".to_owned(),
            Some(json!({"name": 1})),
            Role::Viewer,
            Role::Editor,
        ),
        (
            Method::PATCH,
            format!("/api/v1/pipelines/{p}"),
            Some(json!({"partitions": "x"})),
            Role::Viewer,
            Role::Editor,
        ),
        (
            Method::POST,
            "/api/v1/connectors".to_owned(),
            Some(json!({"name": 1})),
            Role::Editor,
            Role::Admin,
        ),
        (
            Method::PATCH,
            format!("/api/v1/connectors/{c}"),
            Some(json!({"stauts": 1})),
            Role::Editor,
            Role::Admin,
        ),
        (
            Method::POST,
            "/api/v1/webhooks".to_owned(),
            Some(json!({"url": "http://127.0.0.1/"})),
            Role::Editor,
            Role::Admin,
        ),
        (
            Method::GET,
            "/api/v1/webhooks?limit=0".to_owned(),
            None,
            Role::Viewer,
            Role::Admin,
        ),
    ];
    for (method, path, body, low, allowed) in cases {
        let refused = api
            .send(method.clone(), &path, Some(api.key(low)), body.clone())
            .await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{method} {path} as {low}: {}",
            refused.text()
        );
        let bad = api
            .send(method.clone(), &path, Some(api.key(allowed)), body)
            .await;
        assert_eq!(
            bad.status,
            StatusCode::BAD_REQUEST,
            "{method} {path} as {allowed}: {}",
            bad.text()
        );
    }
}
