//! `/project` and `/project/{id}/token` (admin only for writes).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use onelaunch_api::{self as api, Id};

use super::extract::*;
use crate::access::Scope;
use crate::error::ServerResult;
use crate::AppState;

pub(crate) async fn create_project(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<api::ProjectCreate>,
) -> ServerResult<Json<api::ProjectDto>> {
    scope.require_admin()?;
    let p = crate::db::projects::create_project(&state.db, &req.name).await?;
    Ok(Json(p))
}

pub(crate) async fn list_projects(
    State(state): State<AppState>,
    scope: Scope,
) -> ServerResult<Json<api::Page<api::ProjectDto>>> {
    let projects = crate::db::projects::list_projects(&state.db, scope.project_id).await?;
    let n = projects.len() as i64;
    Ok(Json(api::Page::new(projects, n, 0, n.max(1))))
}

pub(crate) async fn create_project_token(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<(StatusCode, Json<api::TokenCreated>)> {
    scope.require_admin()?;
    scope.project(&state.db, id).await?;
    let token = crate::db::projects::create_project_token(&state.db, id).await?;
    Ok((StatusCode::CREATED, Json(api::TokenCreated { token })))
}
