//! Reruns into the same launch: `POST /launch/{id}/rerun` (onelaunch form),
//! `POST /jobrun/{id}/rerun` and `POST /testresult/bulk/rerun` (TestOps).
//! The domain is `server_led::rerun`; a closed launch is reopened here
//! (`closing`) once the rerun is checked.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use onelaunch_api::{self as api, Id};

use super::extract::*;
use crate::access::Scope;
use crate::db::launches::LaunchRow;
use crate::error::{ServerError, ServerResult};
use crate::server_led::rerun;
use crate::AppState;

/// Checks, reopens the launch when a job run will be added, stores and triggers.
pub(crate) async fn rerun_launch(
    state: &AppState,
    scope: &Scope,
    launch: LaunchRow,
    sel: &api::RerunSelection,
    environment: &[api::KeyValue],
    job_run: Option<Id>,
    request_id: Option<&str>,
) -> ServerResult<api::RerunDto> {
    let request_id = rerun::request_id(request_id)?;
    if let Some(dto) = rerun::repeated(state, &launch, request_id.as_deref()).await? {
        return Ok(dto);
    }
    let plan = rerun::prepare(state, scope, launch, sel, environment, job_run, request_id).await?;
    let reopen = plan.runs_anything() && plan.launch.closed;
    if reopen {
        crate::closing::reopen(&state.db, plan.launch.id).await?;
    }
    rerun::start(state, plan, reopen).await
}

/// `POST /api/launch/{id}/rerun` with a [`api::RerunRequest`].
#[utoipa::path(
    post,
    path = "/launch/{id}/rerun",
    tag = "reruns",
    summary = "Run a launch's tests again, into the same launch",
    request_body = api::RerunRequest,
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 200, description = "OK", body = api::RerunDto)),
)]
pub(crate) async fn launch_rerun_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::RerunRequest>,
) -> ServerResult<Json<api::RerunDto>> {
    let launch = scope.launch(&state.db, id).await?;
    let dto = rerun_launch(
        &state,
        &scope,
        launch,
        &req.selection,
        &req.environment,
        None,
        req.request_id.as_deref(),
    )
    .await?;
    Ok(Json(dto))
}

/// The statuses of the RQL a rerun understands: empty (failed tests),
/// `status = "S"` or `status in ("S", …)`.
fn rql_statuses(rql: Option<&str>) -> ServerResult<api::RerunSelection> {
    let rql = rql.map(str::trim).unwrap_or("");
    if rql.is_empty() {
        return Ok(api::RerunSelection {
            failed: true,
            ..Default::default()
        });
    }
    let refused = || {
        ServerError::bad(format!(
            "field `rql`: {rql:?} is not understood; a rerun takes `status = \"failed\"` or \
             `status in (\"failed\", \"broken\")`, or no rql for the failed tests"
        ))
    };
    let lower = rql.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("status")
        .ok_or_else(refused)?
        .trim_start();
    let values: Vec<String> = if let Some(v) = rest.strip_prefix('=') {
        vec![v.trim().to_string()]
    } else if let Some(v) = rest.strip_prefix("in") {
        let v = v.trim();
        let inner = v
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .or_else(|| v.strip_prefix('[').and_then(|v| v.strip_suffix(']')))
            .ok_or_else(refused)?;
        inner.split(',').map(|s| s.trim().to_string()).collect()
    } else {
        return Err(refused());
    };
    let status: Vec<String> = values
        .iter()
        .map(|v| v.trim_matches(|c| c == '"' || c == '\'').trim().to_string())
        .collect();
    if status
        .iter()
        .any(|s| s.is_empty() || !api::STATUSES.contains(&s.as_str()))
    {
        return Err(refused());
    }
    Ok(api::RerunSelection {
        status,
        ..Default::default()
    })
}

/// `POST /api/jobrun/{id}/rerun` (TestOps `{rql}`): tests of this job run
/// again, in its launch; 202 with the [`api::RerunDto`].
#[utoipa::path(
    post,
    path = "/jobrun/{id}/rerun",
    tag = "reruns",
    summary = "Run a job run's tests again, in its launch",
    request_body = api::JobRunRerunRequest,
    params(("id" = i64, Path, description = "job run id")),
    responses((status = 202, description = "accepted", body = api::RerunDto)),
)]
pub(crate) async fn job_run_rerun_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::JobRunRerunRequest>,
) -> ServerResult<(StatusCode, Json<api::RerunDto>)> {
    let run = scope.job_run(&state.db, id).await?;
    let sel = rql_statuses(req.rql.as_deref())?;
    let launch = scope.launch(&state.db, run.launch_id).await?;
    let dto = rerun_launch(
        &state,
        &scope,
        launch,
        &sel,
        &req.environment,
        Some(run.id),
        None,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(dto)))
}

/// `POST /api/testresult/bulk/rerun` (TestOps): the launch and the selected
/// results (`selection.leafsInclude`); 202 with the [`api::RerunDto`].
#[utoipa::path(
    post,
    path = "/testresult/bulk/rerun",
    tag = "reruns",
    summary = "Run selected results again, in their launch",
    request_body = api::BulkRerunRequest,
    responses((status = 202, description = "accepted", body = api::RerunDto)),
)]
pub(crate) async fn bulk_rerun_h(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<api::BulkRerunRequest>,
) -> ServerResult<(StatusCode, Json<api::RerunDto>)> {
    let launch_id = req
        .launch_id
        .or(req.selection.launch_id)
        .ok_or_else(|| ServerError::bad("field `launchId` is required"))?;
    if req.selection.inverted {
        return Err(ServerError::bad(
            "field `selection.inverted`: inverted selections are not supported; list the \
             results in `selection.leafsInclude`",
        ));
    }
    if req.selection.leafs_include.is_empty() {
        return Err(ServerError::bad(
            "field `selection.leafsInclude` must name the results to rerun",
        ));
    }
    let launch = scope.launch(&state.db, launch_id).await?;
    let sel = api::RerunSelection {
        test_result_ids: req.selection.leafs_include.clone(),
        ..Default::default()
    };
    let dto = rerun_launch(&state, &scope, launch, &sel, &req.environment, None, None).await?;
    Ok((StatusCode::ACCEPTED, Json(dto)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rql_forms() {
        assert!(rql_statuses(None).unwrap().failed);
        assert_eq!(
            rql_statuses(Some("status = \"failed\"")).unwrap().status,
            ["failed"]
        );
        assert_eq!(
            rql_statuses(Some("status in (\"failed\", 'broken')"))
                .unwrap()
                .status,
            ["failed", "broken"]
        );
        assert!(rql_statuses(Some("name ~= \"x\"")).is_err());
        assert!(rql_statuses(Some("status = \"weird\"")).is_err());
    }
}
