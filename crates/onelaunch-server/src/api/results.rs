//! `/testresult`, `/testresult/{id}`, `/attachment/{id}/content`: reading results.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use onelaunch_api::{self as api, Id};
use serde::Deserialize;
use serde_json::Value;

use super::extract::*;
use crate::access::Scope;
use crate::error::{ServerError, ServerResult};
use crate::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResultsQuery {
    #[serde(deserialize_with = "api::flex::id")]
    pub(crate) launch_id: Id,
    #[serde(default, deserialize_with = "api::flex::opt_id")]
    pub(crate) job_run_id: Option<Id>,
    #[serde(default)]
    pub(crate) page: Option<i64>,
    #[serde(default)]
    pub(crate) size: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/testresult",
    tag = "results",
    summary = "Test results of a launch",
    params(ResultsQuery),
    responses((status = 200, description = "OK", body = api::Page<api::TestResultDto>)),
)]
pub(crate) async fn list_results(
    State(state): State<AppState>,
    scope: Scope,
    Query(q): Query<ResultsQuery>,
) -> ServerResult<Json<api::Page<api::TestResultDto>>> {
    scope.launch(&state.db, q.launch_id).await?;
    let (page, size) = page_size(q.page, q.size);
    let (rows, total) =
        crate::db::results::list_results(&state.db, q.launch_id, q.job_run_id, page, size).await?;
    Ok(Json(api::Page::new(rows, total, page, size)))
}

#[utoipa::path(
    get,
    path = "/testresult/{id}",
    tag = "results",
    summary = "A test result with steps and attachments",
    params(("id" = i64, Path, description = "test result id")),
    responses((status = 200, description = "OK", body = api::TestResultDetail)),
)]
pub(crate) async fn get_result(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::TestResultDetail>> {
    let owner = scope.result(&state.db, id).await?;
    let body = crate::db::results::result_body(&state.db, id)
        .await?
        .unwrap_or(Value::Null);
    let attachments = crate::db::results::result_attachments(&state.db, id)
        .await?
        .into_iter()
        .map(
            |(id, file_name, name, content_type, size, sha)| api::ResultAttachmentDto {
                id,
                file_name,
                name,
                content_type,
                size,
                stored: sha.is_some(),
            },
        )
        .collect();
    let fixtures = crate::db::results::result_fixtures(&state.db, id).await?;
    Ok(Json(api::TestResultDetail {
        id: owner.id,
        launch_id: owner.launch_id,
        result: body,
        attachments,
        fixtures,
    }))
}

/// The stored bytes with their content type, streamed from where they are
/// kept (`content::open`: the database or the blob store)
/// after their digest was checked (a damaged copy answers 409
/// `content_damaged`, never its bytes). Always a download: `attachment`
/// disposition, no sniffing, and a sandbox should a browser open it.
#[utoipa::path(
    get,
    path = "/attachment/{id}/content",
    tag = "results",
    summary = "The bytes of an attachment",
    params(("id" = i64, Path, description = "attachment id")),
    responses((status = 200, description = "the stored bytes, with their own content type (always served as a download)", content_type = "application/octet-stream", body = Vec<u8>)),
)]
pub(crate) async fn attachment_content(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    let a = scope.attachment(&state.db, id).await?;
    send_attachment(&state, id, &a).await
}

/// The bytes of a stored attachment, streamed from the database or the blob
/// store (verified),
/// with headers that keep a browser from running them.
pub(super) async fn send_attachment(
    state: &AppState,
    id: Id,
    a: &crate::db::results::AttachmentMeta,
) -> ServerResult<Response> {
    let sha = a
        .sha256
        .as_deref()
        .ok_or_else(|| ServerError::NotFound(format!("attachment {id} has no content yet")))?;
    let blob = match crate::content::open(&state.db, &state.blobs, sha).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(ServerError::NotFound(format!(
                "attachment {id} content is missing"
            )))
        }
        Err(ServerError::ContentDamaged(m)) => {
            return Err(ServerError::ContentDamaged(format!("attachment {id}: {m}")))
        }
        Err(e) => return Err(e),
    };
    let ct = a
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let mut res = Body::from_stream(blob.body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.len));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    if let Ok(v) = HeaderValue::from_str(&a.disposition(false)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
