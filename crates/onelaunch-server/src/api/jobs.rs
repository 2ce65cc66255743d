//! `/project/{id}/job`, `/job/{id}` GET/PATCH/PUT (job configuration).

use axum::extract::{Path, State};
use axum::Json;
use onelaunch_api::{self as api, Id};

use super::extract::*;
use crate::access::Scope;
use crate::error::ServerResult;
use crate::server_led::jobs::*;
use crate::AppState;

#[utoipa::path(
    get,
    path = "/project/{id}/job",
    tag = "jobs",
    summary = "List a project's jobs with their CI configuration",
    params(("id" = i64, Path, description = "project id")),
    responses((status = 200, description = "OK", body = Vec<api::JobConfigDto>)),
)]
pub(crate) async fn list_jobs_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(project): Path<Id>,
) -> ServerResult<Json<Vec<api::JobConfigDto>>> {
    scope.project(&state.db, project).await?;
    let mut out = Vec::new();
    for job in crate::db::job_runs::list_jobs(&state.db, project).await? {
        out.push(job_config_dto(&state.db, &job).await?);
    }
    Ok(Json(out))
}

#[utoipa::path(
    get,
    path = "/job/{id}",
    tag = "jobs",
    summary = "A job with its CI configuration",
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "OK", body = api::JobConfigDto)),
)]
pub(crate) async fn get_job_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::JobConfigDto>> {
    let job = scope.job(&state.db, id).await?;
    Ok(Json(job_config_dto(&state.db, &job).await?))
}

/// `PATCH /job/{id}`: fields that are absent stay as they are.
#[utoipa::path(
    patch,
    path = "/job/{id}",
    tag = "jobs",
    summary = "Change a job's CI configuration (absent fields stay)",
    request_body = api::JobConfigUpdate,
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "OK", body = api::JobConfigDto)),
)]
pub(crate) async fn patch_job_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::JobConfigUpdate>,
) -> ServerResult<Json<api::JobConfigDto>> {
    configure(&state, &scope, id, &req, false).await
}

/// `PUT /job/{id}`: fields that are absent are unset.
#[utoipa::path(
    put,
    path = "/job/{id}",
    tag = "jobs",
    summary = "Replace a job's CI configuration (absent fields are unset)",
    request_body = api::JobConfigUpdate,
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "OK", body = api::JobConfigDto)),
)]
pub(crate) async fn put_job_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::JobConfigUpdate>,
) -> ServerResult<Json<api::JobConfigDto>> {
    configure(&state, &scope, id, &req, true).await
}

async fn configure(
    state: &AppState,
    scope: &Scope,
    id: Id,
    req: &api::JobConfigUpdate,
    replace: bool,
) -> ServerResult<Json<api::JobConfigDto>> {
    let job = scope.job(&state.db, id).await?;
    configure_job(state, scope, &job, req, replace).await?;
    Ok(Json(job_config_dto(&state.db, &job).await?))
}
