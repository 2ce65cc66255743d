//! `/testplan…`: plans, executors, and running a plan.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use onelaunch_api::{self as api, Id};

use super::extract::*;
use crate::access::Scope;
use crate::error::ServerResult;
use crate::server_led::{self, plans::*};
use crate::AppState;

#[utoipa::path(
    post,
    path = "/testplan",
    tag = "test plans",
    summary = "Create a test plan",
    request_body = api::TestPlanCreate,
    responses((status = 200, description = "OK", body = api::TestPlanDto)),
)]
pub(crate) async fn create_plan_h(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<api::TestPlanCreate>,
) -> ServerResult<Json<api::TestPlanDto>> {
    scope.project(&state.db, req.project_id).await?;
    let plan = create_plan(&state.db, &req).await?;
    Ok(Json(plan_dto(&state.db, &plan, true).await?))
}

#[utoipa::path(
    get,
    path = "/testplan",
    tag = "test plans",
    summary = "Test plans of a project",
    params(("projectId" = Option<i64>, Query)),
    responses((status = 200, description = "OK", body = Vec<api::TestPlanDto>)),
)]
pub(crate) async fn list_plans_h(
    State(state): State<AppState>,
    scope: Scope,
    RawQuery(query): RawQuery,
) -> ServerResult<Json<Vec<api::TestPlanDto>>> {
    let mut project = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "projectId" {
            project = Some(parse_int("projectId", &v)?);
        }
    }
    let project = project.or(scope.project_id).unwrap_or(1);
    scope.project(&state.db, project).await?;
    let mut out = Vec::new();
    for plan in crate::db::plans::list_plans(&state.db, project).await? {
        out.push(plan_dto(&state.db, &plan, false).await?);
    }
    Ok(Json(out))
}

#[utoipa::path(
    get,
    path = "/testplan/{id}",
    tag = "test plans",
    summary = "A test plan",
    params(("id" = i64, Path, description = "test plan id")),
    responses((status = 200, description = "OK", body = api::TestPlanDto)),
)]
pub(crate) async fn get_plan_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::TestPlanDto>> {
    let plan = scope.plan(&state.db, id).await?;
    Ok(Json(plan_dto(&state.db, &plan, true).await?))
}

#[utoipa::path(
    get,
    path = "/testplan/{id}/executors",
    tag = "test plans",
    summary = "Which jobs run a test plan's tests",
    params(("id" = i64, Path, description = "test plan id")),
    responses((status = 200, description = "OK", body = api::ExecutorsDto)),
)]
pub(crate) async fn executors_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::ExecutorsDto>> {
    let plan = scope.plan(&state.db, id).await?;
    Ok(Json(executors_dto(&state.db, &plan).await?))
}

#[utoipa::path(
    post,
    path = "/testplan/{id}/executors",
    tag = "test plans",
    summary = "Override which job runs a test plan's tests",
    request_body = api::ExecutorOverride,
    params(("id" = i64, Path, description = "test plan id")),
    responses((status = 200, description = "OK", body = api::ExecutorsDto)),
)]
pub(crate) async fn override_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::ExecutorOverride>,
) -> ServerResult<Json<api::ExecutorsDto>> {
    let plan = scope.plan(&state.db, id).await?;
    override_executors(&state.db, &plan, &req).await?;
    Ok(Json(executors_dto(&state.db, &plan).await?))
}

#[utoipa::path(
    post,
    path = "/testplan/{id}/run",
    tag = "test plans",
    summary = "Run a test plan",
    request_body = api::LaunchForm,
    params(("id" = i64, Path, description = "test plan id")),
    responses((status = 200, description = "OK", body = api::ServerRunDto)),
)]
pub(crate) async fn run_plan_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(form): ApiJson<api::LaunchForm>,
) -> ServerResult<Json<api::ServerRunDto>> {
    let plan = scope.plan(&state.db, id).await?;
    let cases = plan_members(&state.db, &plan).await?;
    let run =
        server_led::run_cases(&state, &scope, plan.project_id, Some(&plan), cases, &form).await?;
    Ok(Json(run))
}
