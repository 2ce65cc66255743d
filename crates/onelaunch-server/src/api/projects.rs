//! `/project` and `/project/{id}/token` (admin only for writes).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use onelaunch_api::{self as api, Id};

use super::extract::*;
use crate::access::Scope;
use crate::error::ServerResult;
use crate::AppState;

#[utoipa::path(
    post,
    path = "/project",
    tag = "projects",
    summary = "Create a project (admin)",
    request_body = api::ProjectCreate,
    responses((status = 200, description = "OK", body = api::ProjectDto)),
)]
pub(crate) async fn create_project(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<api::ProjectCreate>,
) -> ServerResult<Json<api::ProjectDto>> {
    scope.require_admin()?;
    let p = crate::db::projects::create_project(&state.db, &req.name).await?;
    Ok(Json(p))
}

#[utoipa::path(
    get,
    path = "/project",
    tag = "projects",
    summary = "List the projects the token sees",
    responses((status = 200, description = "OK", body = api::Page<api::ProjectDto>)),
)]
pub(crate) async fn list_projects(
    State(state): State<AppState>,
    scope: Scope,
) -> ServerResult<Json<api::Page<api::ProjectDto>>> {
    let projects = crate::db::projects::list_projects(&state.db, scope.project_id).await?;
    let n = projects.len() as i64;
    Ok(Json(api::Page::new(projects, n, 0, n.max(1))))
}

/// A token for the project; the body (`TokenCreate`: `name`, `expiresInDays`
/// or `expiresAt`) is optional, its `projectId` is the path's.
#[utoipa::path(
    post,
    path = "/project/{id}/token",
    tag = "tokens",
    summary = "Create a project token (admin)",
    request_body(content = Option<api::TokenCreate>, description = "optional: name, expiresInDays or expiresAt; projectId is the path's"),
    params(("id" = i64, Path, description = "project id")),
    responses((status = 201, description = "the token (shown once) and its record", body = api::TokenIssued)),
)]
pub(crate) async fn create_project_token(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    body: Bytes,
) -> ServerResult<(StatusCode, Json<api::TokenIssued>)> {
    scope.require_admin()?;
    scope.project(&state.db, id).await?;
    // No body, or `null`, asks for the defaults.
    let mut req: api::TokenCreate = if body.iter().all(u8::is_ascii_whitespace) {
        api::TokenCreate::default()
    } else {
        crate::ingest::decode::json_body::<Option<api::TokenCreate>>(&body)?.unwrap_or_default()
    };
    req.project_id = Some(id);
    if req.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        req.name = Some(format!("project {id}"));
    }
    let issued = scope.create_token(&state.db, &req).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Retention of a project's launches (`docs/lifecycle.md`): closed launches
/// older than `days` or beyond the newest `launches` are deleted by the
/// server's retention task; `null` (or absent) means no bound.
#[derive(Debug, serde::Deserialize, serde::Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RetentionBody {
    #[serde(default)]
    days: Option<i64>,
    #[serde(default)]
    launches: Option<i64>,
}

/// `GET /project/{id}/retention` (admin).
#[utoipa::path(
    get,
    path = "/project/{id}/retention",
    tag = "projects",
    summary = "Retention of a project's closed launches (admin)",
    params(("id" = i64, Path, description = "project id")),
    responses((status = 200, description = "OK", body = RetentionBody)),
)]
pub(crate) async fn get_retention(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<RetentionBody>> {
    scope.require_admin()?;
    scope.project(&state.db, id).await?;
    let r = crate::db::lifecycle::retention(&state.db, id).await?;
    Ok(Json(RetentionBody {
        days: r.days,
        launches: r.launches,
    }))
}

/// `PUT /project/{id}/retention` (admin): both bounds at once; `{}` turns
/// retention off.
#[utoipa::path(
    put,
    path = "/project/{id}/retention",
    tag = "projects",
    summary = "Set the retention of a project's closed launches (admin)",
    params(("id" = i64, Path, description = "project id")),
    request_body = RetentionBody,
    responses((status = 200, description = "OK", body = RetentionBody)),
)]
pub(crate) async fn put_retention(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<RetentionBody>,
) -> ServerResult<Json<RetentionBody>> {
    scope.require_admin()?;
    scope.project(&state.db, id).await?;
    for (field, v) in [("days", req.days), ("launches", req.launches)] {
        if let Some(n) = v {
            if !(1..=1_000_000).contains(&n) {
                return Err(crate::error::ServerError::bad(format!(
                    "field `{field}` must be between 1 and 1000000 (or null for no bound), got {n}"
                )));
            }
        }
    }
    let r = crate::db::lifecycle::Retention {
        days: req.days,
        launches: req.launches,
    };
    crate::db::lifecycle::set_retention(&state.db, id, r).await?;
    Ok(Json(req))
}
