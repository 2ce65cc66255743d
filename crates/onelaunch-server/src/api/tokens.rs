//! `/token` (admin only): list, create (the secret is in the answer once) and
//! revoke API tokens. The rules are in `access` (`Scope::create_token`, …).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use onelaunch_api::{self as api, Id};

use super::extract::*;
use crate::access::Scope;
use crate::error::ServerResult;
use crate::AppState;

#[utoipa::path(
    get,
    path = "/token",
    tag = "tokens",
    summary = "List tokens (never their secrets)",
    responses((status = 200, description = "OK", body = api::Page<api::TokenDto>)),
)]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    scope: Scope,
) -> ServerResult<Json<api::Page<api::TokenDto>>> {
    let tokens = scope.list_tokens(&state.db).await?;
    let n = tokens.len() as i64;
    Ok(Json(api::Page::new(tokens, n, 0, n.max(1))))
}

#[utoipa::path(
    post,
    path = "/token",
    tag = "tokens",
    summary = "Create a token",
    request_body = api::TokenCreate,
    responses((status = 201, description = "the token (shown once) and its record", body = api::TokenIssued)),
)]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<api::TokenCreate>,
) -> ServerResult<(StatusCode, Json<api::TokenIssued>)> {
    let issued = scope.create_token(&state.db, &req).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[utoipa::path(
    delete,
    path = "/token/{id}",
    tag = "tokens",
    summary = "Revoke a token",
    params(("id" = i64, Path, description = "token id")),
    responses((status = 200, description = "the revoked token", body = api::TokenDto)),
)]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::TokenDto>> {
    Ok(Json(scope.revoke_token(&state.db, id).await?))
}
