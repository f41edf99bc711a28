//! `GET …/runs/{runId}/errors`: every validation error of a run, as JSON
//! (default) or as a CSV download with `Accept: text/csv`. Both bodies are
//! streamed from the store, so a run with a million errors exports in
//! bounded memory.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use sluice_domain::ids::{PipelineId, RunId};

use crate::auth::Caller;
use crate::dto::RunErrorsResponse;
use crate::error::ApiError;
use crate::export::{csv_chunks, json_chunks};
use crate::request::{ListParams, optional_page_request};
use crate::routes::runs::run_path;
use crate::state::ApiState;

/// The quality `Accept` gives a media type: the highest q among the ranges
/// matching it (`type/sub`, `type/*`, `*/*`); 0 when none does.
fn quality(accept: &str, media_type: &str) -> f32 {
    let (kind, _) = media_type.split_once('/').unwrap_or((media_type, ""));
    accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let name = parts.next()?.trim().to_ascii_lowercase();
            let matches = name == media_type || name == "*/*" || name == format!("{kind}/*");
            if !matches {
                return None;
            }
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some(q)
        })
        .fold(0.0, f32::max)
}

/// True when the caller prefers CSV over JSON; JSON is the default.
fn wants_csv(req: &HttpRequest) -> bool {
    let accept = req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    quality(&accept, "text/csv") > quality(&accept, "application/json")
}

/// Get the validation errors of a run.
///
/// Returns all validation errors of a run. `Accept: application/json` (default)
/// returns `{runId, total, errors}`; `Accept: text/csv` returns a downloadable
/// CSV file with the header line `Row,Column,Value,Error`, where cells that
/// a spreadsheet would read as a formula are prefixed with `'`.
///
/// With `limit` or `cursor`, the JSON answer is one page of the list, in row
/// order, with `nextCursor` (null on the last page); the CSV is always the
/// whole list.
#[utoipa::path(
    get,
    path = "/api/v1/pipelines/{id}/runs/{runId}/errors",
    operation_id = "getRunErrors",
    tag = "runs",
    params(
        ("id" = PipelineId, Path, description = "Pipeline ID"),
        ("runId" = RunId, Path, description = "Pipeline run ID"),
        ("Accept" = Option<String>, Header, description = "`application/json` (default) or `text/csv`"),
        ListParams
    ),
    responses((
        status = 200,
        description = "Every validation error of the run, in row order",
        headers(("Content-Disposition" = String, description = "With CSV: `attachment; filename=\"pipeline-run-{runId}-errors.csv\"`")),
        content(
            (RunErrorsResponse = "application/json"),
            (String = "text/csv; charset=utf-8", example = "Row,Column,Value,Error\r\n142,email,not-an-email,Invalid email format\r\n")
        )
    ))
)]
pub async fn export(
    Caller(who): Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, run_id) = run_path(&req)?;
    let page = optional_page_request(&req)?;
    if let (Some(page), false) = (&page, wants_csv(&req)) {
        let (total, page) = state.app().run_errors_page(&who, id, run_id, page).await?;
        return Ok(HttpResponse::Ok().json(RunErrorsResponse {
            run_id,
            total,
            errors: page.items,
            next_cursor: Some(page.next_cursor),
        }));
    }
    let errors = state.app().run_errors(&who, id, run_id).await?;
    Ok(if wants_csv(&req) {
        HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"pipeline-run-{run_id}-errors.csv\""),
            ))
            .streaming(csv_chunks(errors))
    } else {
        HttpResponse::Ok()
            .content_type("application/json")
            .streaming(json_chunks(errors))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn csv_for(accept: Option<&str>) -> bool {
        let mut req = TestRequest::default();
        if let Some(a) = accept {
            req = req.insert_header((header::ACCEPT, a));
        }
        wants_csv(&req.to_http_request())
    }

    #[test]
    fn negotiation_defaults_to_json() {
        assert!(csv_for(Some("text/csv")));
        assert!(csv_for(Some("text/csv; charset=utf-8")));
        assert!(csv_for(Some("text/*")));
        assert!(csv_for(Some("application/json;q=0.5, text/csv")));
        assert!(!csv_for(None));
        assert!(!csv_for(Some("*/*")));
        assert!(!csv_for(Some("application/json")));
        assert!(!csv_for(Some("text/csv;q=0.4, application/json")));
        assert!(!csv_for(Some("image/png")));
    }
}
