//! `/launch…`: create, list, read, delete, close/reopen, progress, statistic,
//! job runs of a launch, named-env/category/error/quality-gate bulk,
//! `/launch/attachment`, and the expected job runs of safe closing.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use onelaunch_api::{self as api, Id};
use serde::{Deserialize, Serialize};

use super::extract::*;
use crate::access::Scope;
use crate::db::launches::*;
use crate::error::{ServerError, ServerResult};
use crate::ingest::limits;
use crate::{closing, AppState};

/// The most job runs a launch may expect.
pub(super) const MAX_EXPECTED_JOB_RUNS: i64 = 10_000;

#[utoipa::path(
    post,
    path = "/launch/{id}/expected-job-runs",
    tag = "launches",
    summary = "Set how many job runs a launch waits for",
    request_body = api::ExpectedJobRuns,
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 204, description = "set")),
)]
pub(crate) async fn set_expected(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::ExpectedJobRuns>,
) -> ServerResult<StatusCode> {
    scope.launch(&state.db, id).await?;
    if !(0..=MAX_EXPECTED_JOB_RUNS).contains(&req.expected_job_runs) {
        return Err(ServerError::bad(format!(
            "field `expectedJobRuns` must be between 0 and {MAX_EXPECTED_JOB_RUNS}, got {}",
            req.expected_job_runs
        )));
    }
    set_expected_job_runs(&state.db, id, req.expected_job_runs).await?;
    tracing::info!(
        launch = id,
        expected = req.expected_job_runs,
        "expected job runs declared"
    );
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/launch",
    tag = "launches",
    summary = "Create a launch",
    request_body = api::LaunchCreate,
    responses((status = 200, description = "OK", body = api::LaunchDto)),
)]
pub(crate) async fn create_launch(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(mut req): ApiJson<api::LaunchCreate>,
) -> ServerResult<Json<api::LaunchDto>> {
    scope.project(&state.db, req.project_id).await?;
    limits::bound_launch(&mut req)?;
    let l = crate::db::launches::create_launch(&state.db, &req).await?;
    tracing::info!(launch = l.id, project = l.project_id, "launch created");
    Ok(Json(l.to_dto(&state.public_url)))
}

#[utoipa::path(
    get,
    path = "/launch/{id}",
    tag = "launches",
    summary = "A launch",
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 200, description = "OK", body = api::LaunchDto)),
)]
pub(crate) async fn get_launch(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::LaunchDto>> {
    let l = scope.launch(&state.db, id).await?;
    let mut dto = l.to_dto(&state.public_url);
    dto.participants = Some(
        closing::participants(
            &state.db,
            l.id,
            l.expected_job_runs,
            state.upload_session_timeout,
        )
        .await?,
    );
    dto.planned = crate::db::server_runs::launch_planned(&state.db, l.id).await?;
    dto.reruns = crate::db::reruns::rerun_summary(&state.db, l.id).await?;
    let env = crate::db::views::launch_environment(&state.db, l.id).await?;
    dto.environment = env
        .into_iter()
        .flat_map(|(key, values)| {
            values.into_iter().map(move |value| api::KeyValue {
                key: key.clone(),
                value,
            })
        })
        .take(1000)
        .collect();
    (dto.combined_into, dto.combined_from) = crate::db::combine::links(&state.db, l.id).await?;
    Ok(Json(dto))
}

#[utoipa::path(
    get,
    path = "/launch",
    tag = "launches",
    summary = "List launches, newest first",
    params(PageQuery),
    responses((status = 200, description = "OK", body = api::Page<api::LaunchDto>)),
)]
pub(crate) async fn list_launches(
    State(state): State<AppState>,
    scope: Scope,
    Query(q): Query<PageQuery>,
) -> ServerResult<Json<api::Page<api::LaunchDto>>> {
    let project = scope.project_or_default(q.project_id);
    scope.project(&state.db, project).await?;
    let (page, size) = page_size(q.page, q.size);
    let (rows, total) =
        crate::db::launches::list_launches(&state.db, project, q.search.as_deref(), page, size)
            .await?;
    let content = rows.iter().map(|l| l.to_dto(&state.public_url)).collect();
    Ok(Json(api::Page::new(content, total, page, size)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// `true`: delete even with an unfinished job run or an open upload session.
    force: Option<String>,
}

/// Deletes a launch, its rows and every blob no other row references
/// (`crate::lifecycle`). Admin or a token of the launch's project. A launch
/// with an unfinished job run or an open upload session is refused (409
/// `conflict`) unless `?force=true`. Answers what was removed.
#[utoipa::path(
    delete,
    path = "/launch/{id}",
    tag = "launches",
    summary = "Delete a launch, its results and the attachment files no other result uses",
    params(("id" = i64, Path, description = "launch id"), DeleteQuery),
    responses(
        (status = 200, description = "what was removed", body = crate::lifecycle::Deleted),
        (status = 409, description = "an unfinished job run or open upload session (without force)", body = api::ErrorBody),
    ),
)]
pub(crate) async fn delete_launch(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    Query(q): Query<DeleteQuery>,
) -> ServerResult<Json<crate::lifecycle::Deleted>> {
    let force = match q.force.as_deref() {
        None | Some("false") => false,
        Some("true") | Some("") => true,
        Some(other) => {
            return Err(ServerError::bad(format!(
                "query parameter `force` must be true or false, got {other:?}"
            )))
        }
    };
    scope.launch(&state.db, id).await?;
    let d = crate::lifecycle::delete_launch(
        &state.db,
        &state.blobs,
        id,
        force,
        state.upload_session_timeout,
    )
    .await?;
    Ok(Json(d))
}

#[utoipa::path(
    post,
    path = "/launch/{id}/close",
    tag = "launches",
    summary = "Close a launch",
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 204, description = "closed")),
)]
pub(crate) async fn close_launch(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<StatusCode> {
    let l = scope.launch(&state.db, id).await?;
    if !l.closed {
        crate::closing::close(&state.db, id).await?;
        tracing::info!(launch = id, "launch closed");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/launch/{id}/reopen",
    tag = "launches",
    summary = "Reopen a closed launch",
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 204, description = "reopened")),
)]
pub(crate) async fn reopen_launch(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<StatusCode> {
    let l = scope.launch(&state.db, id).await?;
    if l.closed {
        crate::closing::reopen(&state.db, id).await?;
        tracing::info!(launch = id, "launch reopened");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/launch/{id}/progress",
    tag = "launches",
    summary = "Whether a launch's results are all in",
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 200, description = "OK", body = api::LaunchProgress)),
)]
pub(crate) async fn launch_progress(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::LaunchProgress>> {
    let l = scope.launch(&state.db, id).await?;
    let p = closing::participants(
        &state.db,
        l.id,
        l.expected_job_runs,
        state.upload_session_timeout,
    )
    .await?;
    // Results are indexed synchronously on upload, so a launch is always
    // ready; `done` says whether anything is still in flight.
    Ok(Json(api::LaunchProgress {
        ready: true,
        done: Some(p.complete()),
        participants: Some(p),
    }))
}

#[utoipa::path(
    get,
    path = "/launch/{id}/statistic",
    tag = "launches",
    summary = "Result counts by status",
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 200, description = "OK", body = Vec<api::StatisticItem>)),
)]
pub(crate) async fn launch_statistic(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<Vec<api::StatisticItem>>> {
    scope.launch(&state.db, id).await?;
    Ok(Json(
        crate::db::launches::launch_statistic(&state.db, id).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/launch/{id}/job",
    tag = "job runs",
    summary = "The job runs of a launch",
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 200, description = "OK", body = Vec<api::JobRunDto>)),
)]
pub(crate) async fn launch_jobs(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<Vec<api::JobRunDto>>> {
    scope.launch(&state.db, id).await?;
    let runs = crate::db::job_runs::launch_job_runs(&state.db, id).await?;
    let mut planned = crate::db::server_runs::planned_scopes(&state.db, id).await?;
    let dtos = runs
        .iter()
        .map(|r| {
            let mut dto = r.to_dto(&state.public_url);
            dto.planned = planned.remove(&r.id);
            dto
        })
        .collect();
    Ok(Json(dtos))
}

pub(crate) async fn bulk_refs(
    state: AppState,
    scope: Scope,
    req: api::LaunchBulk,
    kind: &str,
) -> ServerResult<Json<Vec<api::BulkRef>>> {
    let l = scope.launch(&state.db, req.launch_id).await?;
    limits::bound_bulk(&req.items)?;
    let refs = crate::db::launches::launch_refs(&state.db, l.id, kind, &req.items).await?;
    Ok(Json(refs))
}

#[utoipa::path(
    post,
    path = "/launch/named-env/bulk",
    tag = "launches",
    summary = "Add environment entries to a launch (Allure 3 plugin)",
    request_body = api::LaunchBulk,
    responses((status = 200, description = "OK", body = Vec<api::BulkRef>)),
)]
pub(crate) async fn named_env_bulk(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<api::LaunchBulk>,
) -> ServerResult<Json<Vec<api::BulkRef>>> {
    bulk_refs(state, scope, req, "named-env").await
}

#[utoipa::path(
    post,
    path = "/launch/category/bulk",
    tag = "launches",
    summary = "Add categories to a launch (Allure 3 plugin)",
    request_body = api::LaunchBulk,
    responses((status = 200, description = "OK", body = Vec<api::BulkRef>)),
)]
pub(crate) async fn category_bulk(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<api::LaunchBulk>,
) -> ServerResult<Json<Vec<api::BulkRef>>> {
    bulk_refs(state, scope, req, "category").await
}

/// The answer of an accepted bulk: `{}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted {}

/// `POST /api/launch/error/bulk` (Allure 3 TestOps plugin): errors that
/// belong to no test, kept with the launch's globals (`/launch/{id}/globals`)
/// and counted as problems, like those of `*-globals.json` files.
#[utoipa::path(
    post,
    path = "/launch/error/bulk",
    tag = "launches",
    summary = "Add errors outside any test to a launch (Allure 3 plugin)",
    request_body = api::LaunchBulk,
    responses((status = 200, description = "accepted: `{}`", body = Accepted)),
)]
pub(crate) async fn launch_errors(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<api::LaunchBulk>,
) -> ServerResult<Json<Accepted>> {
    let launch = scope.launch(&state.db, req.launch_id).await?;
    let mut errors = Vec::with_capacity(req.items.len());
    for (i, item) in req.items.iter().enumerate() {
        let Some(obj) = item.as_object() else {
            return Err(ServerError::bad(format!(
                "field `items[{i}]`: expected an error object {{message?, trace?}}"
            )));
        };
        let text = |k: &str| obj.get(k).and_then(|v| v.as_str()).map(str::to_string);
        errors.push(onelaunch_model::allure::GlobalError {
            message: text("message"),
            trace: text("trace"),
            timestamp: obj.get("timestamp").and_then(|v| v.as_i64()),
            environment: text("environment"),
        });
    }
    crate::ingest::launch_errors(&state.db, &launch, &errors).await?;
    Ok(Json(Accepted {}))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LaunchIdQuery {
    #[serde(deserialize_with = "api::flex::id")]
    pub(crate) launch_id: Id,
}

#[utoipa::path(
    post,
    path = "/launch/attachment",
    tag = "launches",
    summary = "Attach files to a launch (Allure 3 plugin)",
    request_body(content = super::openapi::FileParts, content_type = "multipart/form-data", description = "one part per file; the part's file name names the file"),
    params(LaunchIdQuery),
    responses((status = 202, description = "stored")),
)]
pub(crate) async fn launch_attachment(
    State(state): State<AppState>,
    scope: Scope,
    Query(q): Query<LaunchIdQuery>,
    mut mp: Multipart,
) -> ServerResult<StatusCode> {
    let launch = scope.launch(&state.db, q.launch_id).await?;
    while let Some(field) = mp.next_field().await.map_err(multipart_err)? {
        let name = field
            .file_name()
            .or(field.name())
            .map(str::to_string)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ServerError::bad("multipart part `file` needs a file name"))?;
        let content_type = field.content_type().map(str::to_string);
        let chunks = super::uploads::chunks(field);
        crate::ingest::launch_attachment(
            &state.db,
            &state.blobs,
            crate::ingest::Sender::of(scope.project_id),
            &launch,
            &name,
            content_type.as_deref(),
            chunks,
        )
        .await?;
    }
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepted_bulk_is_an_empty_object() {
        assert_eq!(serde_json::to_string(&super::Accepted {}).unwrap(), "{}");
    }
}
