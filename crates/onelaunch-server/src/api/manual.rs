//! `/launch/{id}/manual` (results, cases with assignees, progress),
//! `/launch/{id}/manual/assignee`, `/testplan/{id}/manual-assignee` and
//! `/launch/{id}/statistic/{manual|automated}`.

use axum::extract::{Path, Query, State};
use axum::Json;
use onelaunch_api::{self as api, Id};

use super::extract::*;
use crate::access::Scope;
use crate::error::{ServerError, ServerResult};
use crate::server_led::manual::*;
use crate::AppState;

#[utoipa::path(
    post,
    path = "/launch/{id}/manual",
    tag = "manual",
    summary = "Record manual test results",
    request_body = api::ManualResults,
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 200, description = "OK", body = Vec<api::ManualResultDto>)),
)]
pub(crate) async fn record_manual_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::ManualResults>,
) -> ServerResult<Json<Vec<api::ManualResultDto>>> {
    let launch = scope.launch(&state.db, id).await?;
    let out = record_manual(&state.db, &launch, &req).await?;
    Ok(Json(out))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ManualQuery {
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

#[utoipa::path(
    get,
    path = "/launch/{id}/manual",
    tag = "manual",
    summary = "A launch's manual tests",
    params(("id" = i64, Path, description = "launch id"), ManualQuery),
    responses((status = 200, description = "OK", body = api::LaunchManualDto)),
)]
pub(crate) async fn manual_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    Query(q): Query<ManualQuery>,
) -> ServerResult<Json<api::LaunchManualDto>> {
    scope.launch(&state.db, id).await?;
    let filter = ManualFilter::parse(q.assignee.as_deref(), q.state.as_deref())?;
    Ok(Json(manual_dto(&state.db, id, &filter).await?))
}

/// `POST /launch/{id}/manual/assignee`: answers the launch's manual view.
#[utoipa::path(
    post,
    path = "/launch/{id}/manual/assignee",
    tag = "manual",
    summary = "Assign a launch's manual tests",
    request_body = api::ManualAssignments,
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 200, description = "OK", body = api::LaunchManualDto)),
)]
pub(crate) async fn assign_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::ManualAssignments>,
) -> ServerResult<Json<api::LaunchManualDto>> {
    let launch = scope.launch(&state.db, id).await?;
    assign(
        &state.db,
        &launch,
        &req,
        &format!("token {}", scope.token_id),
    )
    .await?;
    Ok(Json(
        manual_dto(&state.db, id, &ManualFilter::default()).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/testplan/{id}/manual-assignee",
    tag = "manual",
    summary = "A test plan's manual assignees",
    params(("id" = i64, Path, description = "test plan id")),
    responses((status = 200, description = "OK", body = api::ManualAssignments)),
)]
pub(crate) async fn plan_assignees_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::ManualAssignments>> {
    let plan = scope.plan(&state.db, id).await?;
    Ok(Json(plan_assignees_dto(&state.db, plan.id).await?))
}

#[utoipa::path(
    put,
    path = "/testplan/{id}/manual-assignee",
    tag = "manual",
    summary = "Replace a test plan's manual assignees",
    request_body = api::ManualAssignments,
    params(("id" = i64, Path, description = "test plan id")),
    responses((status = 200, description = "OK", body = api::ManualAssignments)),
)]
pub(crate) async fn set_plan_assignees_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::ManualAssignments>,
) -> ServerResult<Json<api::ManualAssignments>> {
    let plan = scope.plan(&state.db, id).await?;
    Ok(Json(set_plan_assignees(&state.db, &plan, &req).await?))
}

/// `GET /launch/{id}/statistic/manual|automated`: the launch statistic split.
#[utoipa::path(
    get,
    path = "/launch/{id}/statistic/{kind}",
    tag = "launches",
    summary = "Result counts by status, manual or automated tests only",
    params(("id" = i64, Path, description = "launch id"), ("kind" = String, Path, description = "`manual` or `automated`")),
    responses((status = 200, description = "OK", body = Vec<api::StatisticItem>)),
)]
pub(crate) async fn statistic_kind_h(
    State(state): State<AppState>,
    scope: Scope,
    Path((id, kind)): Path<(Id, String)>,
) -> ServerResult<Json<Vec<api::StatisticItem>>> {
    let manual = match kind.as_str() {
        "manual" => true,
        "automated" => false,
        other => {
            return Err(ServerError::bad(format!(
                "statistic kind {other:?}: expected manual or automated"
            )))
        }
    };
    scope.launch(&state.db, id).await?;
    Ok(Json(
        crate::db::launches::statistic(&state.db, id, Some(manual)).await?,
    ))
}
