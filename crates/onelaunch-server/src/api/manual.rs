//! `/launch/{id}/manual` and `/launch/{id}/statistic/{manual|automated}`.

use axum::extract::{Path, State};
use axum::Json;
use onelaunch_api::{self as api, Id};

use super::extract::*;
use crate::access::Scope;
use crate::error::{ServerError, ServerResult};
use crate::server_led::manual::*;
use crate::AppState;

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

pub(crate) async fn manual_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::LaunchManualDto>> {
    scope.launch(&state.db, id).await?;
    Ok(Json(manual_dto(&state.db, id).await?))
}

/// `GET /launch/{id}/statistic/manual|automated`: the launch statistic split.
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
