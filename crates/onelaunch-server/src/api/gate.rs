//! The quality gate: a launch's verdict, the rules of projects and plans, and
//! the failed rules the Allure 3 TestOps plugin reports.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use onelaunch_api::{self as api, Id};
use serde::Serialize;

use super::extract::*;
use crate::access::Scope;
use crate::error::{ServerError, ServerResult};
use crate::AppState;

fn checked(rules: api::GateRules) -> ServerResult<api::GateRules> {
    rules.validate().map_err(ServerError::bad)?;
    Ok(rules)
}

/// `GET /api/launch/{id}/gate`: the verdict stored when the launch closed,
/// else the launch judged now against its configured rules.
#[utoipa::path(
    get,
    path = "/launch/{id}/gate",
    tag = "gate",
    summary = "A launch's gate verdict",
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 200, description = "OK", body = api::GateReport)),
)]
pub(crate) async fn launch_gate(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::GateReport>> {
    let launch = scope.launch(&state.db, id).await?;
    Ok(Json(crate::gate::report(&state.db, &launch, None).await?))
}

/// `POST /api/launch/{id}/gate` with rules: the launch judged now against
/// its configured rules made stricter by these (`launch gate` flags).
#[utoipa::path(
    post,
    path = "/launch/{id}/gate",
    tag = "gate",
    summary = "Judge a launch now, with stricter rules",
    request_body = api::GateRules,
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 200, description = "OK", body = api::GateReport)),
)]
pub(crate) async fn judge_launch(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(rules): ApiJson<api::GateRules>,
) -> ServerResult<Json<api::GateReport>> {
    let launch = scope.launch(&state.db, id).await?;
    let rules = checked(rules)?;
    Ok(Json(
        crate::gate::report(&state.db, &launch, Some(&rules)).await?,
    ))
}

/// `GET /api/project/{id}/gate`: the project's default rules.
#[utoipa::path(
    get,
    path = "/project/{id}/gate",
    tag = "gate",
    summary = "A project's default gate rules",
    params(("id" = i64, Path, description = "project id")),
    responses((status = 200, description = "OK", body = api::GateRules)),
)]
pub(crate) async fn project_gate(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::GateRules>> {
    scope.project(&state.db, id).await?;
    Ok(Json(
        crate::db::gate::project_rules(&state.db, id)
            .await?
            .unwrap_or_default(),
    ))
}

/// `PUT /api/project/{id}/gate`: replaces the project's default rules. Admin
/// only: a CI job's project token must not switch off its own gate.
#[utoipa::path(
    put,
    path = "/project/{id}/gate",
    tag = "gate",
    summary = "Replace a project's default gate rules (admin)",
    request_body = api::GateRules,
    params(("id" = i64, Path, description = "project id")),
    responses((status = 200, description = "OK", body = api::GateRules)),
)]
pub(crate) async fn set_project_gate(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(rules): ApiJson<api::GateRules>,
) -> ServerResult<Json<api::GateRules>> {
    scope.require_admin()?;
    scope.project(&state.db, id).await?;
    let rules = checked(rules)?;
    crate::db::gate::set_project_rules(&state.db, id, &rules).await?;
    Ok(Json(rules))
}

/// `GET /api/testplan/{id}/gate`: the plan's rules.
#[utoipa::path(
    get,
    path = "/testplan/{id}/gate",
    tag = "gate",
    summary = "A test plan's gate rules",
    params(("id" = i64, Path, description = "test plan id")),
    responses((status = 200, description = "OK", body = api::GateRules)),
)]
pub(crate) async fn plan_gate(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::GateRules>> {
    scope.plan(&state.db, id).await?;
    Ok(Json(
        crate::db::gate::plan_rules(&state.db, id)
            .await?
            .unwrap_or_default(),
    ))
}

/// `PUT /api/testplan/{id}/gate`: replaces the plan's rules. They only ever
/// add to the project's defaults (the strictest value of both applies).
#[utoipa::path(
    put,
    path = "/testplan/{id}/gate",
    tag = "gate",
    summary = "Replace a test plan's gate rules",
    request_body = api::GateRules,
    params(("id" = i64, Path, description = "test plan id")),
    responses((status = 200, description = "OK", body = api::GateRules)),
)]
pub(crate) async fn set_plan_gate(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(rules): ApiJson<api::GateRules>,
) -> ServerResult<Json<api::GateRules>> {
    scope.plan(&state.db, id).await?;
    let rules = checked(rules)?;
    crate::db::gate::set_plan_rules(&state.db, id, &rules).await?;
    Ok(Json(rules))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted {}

/// `POST /api/launch/quality-gate/bulk` (Allure 3 TestOps plugin): the rules
/// its own quality gate found broken, kept on the launch and shown beside
/// onelaunch's verdict; any of them fails the launch's gate.
#[utoipa::path(
    post,
    path = "/launch/quality-gate/bulk",
    tag = "gate",
    summary = "Keep the Allure 3 quality gate's broken rules on a launch",
    request_body = api::LaunchBulk,
    responses((status = 200, description = "accepted: `{}`", body = Accepted)),
)]
pub(crate) async fn allure_quality_gate(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<api::LaunchBulk>,
) -> ServerResult<(StatusCode, Json<Accepted>)> {
    let launch = scope.launch(&state.db, req.launch_id).await?;
    let mut items = Vec::with_capacity(req.items.len());
    for (i, item) in req.items.into_iter().enumerate() {
        let item: api::AllureGateItem = serde_json::from_value(item).map_err(|e| {
            ServerError::bad(format!(
                "field `items[{i}]`: expected {{name, message?, namedEnvId?}}: {e}"
            ))
        })?;
        items.push(item);
    }
    crate::db::gate::add_allure_items(&state.db, launch.id, &items).await?;
    if launch.closed {
        // The stored verdict takes them in.
        crate::gate::on_close(&state.db, launch.id).await?;
    }
    Ok((StatusCode::OK, Json(Accepted {})))
}
