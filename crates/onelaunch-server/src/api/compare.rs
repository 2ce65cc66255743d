//! `/launch/compare` (two launches test by test) and `/launch/combine` (a new
//! launch holding the results of several): launches analysed together.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use onelaunch_api as api;

use super::extract::*;
use crate::access::Scope;
use crate::error::{ServerError, ServerResult};
use crate::AppState;

/// `GET /launch/compare?base=A&head=B`.
#[utoipa::path(
    get,
    path = "/launch/compare",
    tag = "launches",
    summary = "Compare two launches",
    params(("base" = i64, Query, description = "the earlier launch id"), ("head" = i64, Query, description = "the later launch id")),
    responses((status = 200, description = "OK", body = api::LaunchComparison)),
)]
pub(crate) async fn compare_h(
    State(state): State<AppState>,
    scope: Scope,
    Query(q): Query<HashMap<String, String>>,
) -> ServerResult<Json<api::LaunchComparison>> {
    let id = |k: &str| -> ServerResult<i64> {
        let v = q
            .get(k)
            .ok_or_else(|| ServerError::bad(format!("query `{k}` (a launch id) is required")))?;
        parse_int(k, v)
    };
    let (base, head) = (id("base")?, id("head")?);
    let base = scope.launch(&state.db, base).await?;
    let head = scope.launch(&state.db, head).await?;
    Ok(Json(
        crate::compare::compare(&state.db, &base, &head).await?,
    ))
}

/// `POST /launch/combine {launchIds, name}`: the combined launch.
#[utoipa::path(
    post,
    path = "/launch/combine",
    tag = "launches",
    summary = "Combine launches into a new one",
    request_body = api::LaunchCombine,
    responses((status = 200, description = "the combined launch", body = api::LaunchDto)),
)]
pub(crate) async fn combine_h(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<api::LaunchCombine>,
) -> ServerResult<Json<api::LaunchDto>> {
    let mut sources = Vec::new();
    for id in crate::ingest::combine::source_ids(&req.launch_ids)? {
        sources.push(scope.launch(&state.db, id).await?);
    }
    let id = crate::ingest::combine::combine(&state.db, &sources, &req.name).await?;
    let l = scope.launch(&state.db, id).await?;
    let mut dto = l.to_dto(&state.public_url);
    (dto.combined_into, dto.combined_from) = crate::db::combine::links(&state.db, id).await?;
    Ok(Json(dto))
}
