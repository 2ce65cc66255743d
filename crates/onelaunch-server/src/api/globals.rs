//! `/launch/{id}/globals`, `/jobrun/{id}/globals`,
//! `/globals/attachment/{id}/content`: errors and attachments that belong to
//! no test (Allure 3 `*-globals.json`), stored by `ingest::globals`.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use onelaunch_api::{GlobalsDto, Id};

use crate::access::Scope;
use crate::db::globals::{self, GlobalsList};
use crate::error::ServerResult;
use crate::AppState;

fn dto(launch_id: Id, job_run_id: Option<Id>, list: GlobalsList) -> GlobalsDto {
    GlobalsDto {
        launch_id,
        job_run_id,
        error_count: list.error_count,
        attachment_count: list.attachment_count,
        errors: list.errors,
        attachments: list.attachments,
    }
}

#[utoipa::path(
    get,
    path = "/launch/{id}/globals",
    tag = "globals",
    summary = "Errors and attachments outside any test, of a launch",
    params(("id" = i64, Path, description = "launch id")),
    responses((status = 200, description = "OK", body = GlobalsDto)),
)]
pub(crate) async fn launch_globals(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<GlobalsDto>> {
    let l = scope.launch(&state.db, id).await?;
    let list = globals::list(&state.db, l.id, None).await?;
    Ok(Json(dto(l.id, None, list)))
}

#[utoipa::path(
    get,
    path = "/jobrun/{id}/globals",
    tag = "globals",
    summary = "Errors and attachments outside any test, of a job run",
    params(("id" = i64, Path, description = "job run id")),
    responses((status = 200, description = "OK", body = GlobalsDto)),
)]
pub(crate) async fn job_run_globals(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<GlobalsDto>> {
    let r = scope.job_run(&state.db, id).await?;
    let list = globals::list(&state.db, r.launch_id, Some(r.id)).await?;
    Ok(Json(dto(r.launch_id, Some(r.id), list)))
}

#[utoipa::path(
    get,
    path = "/globals/attachment/{id}/content",
    operation_id = "global_attachment_content",
    tag = "globals",
    summary = "The bytes of a global attachment",
    params(("id" = i64, Path, description = "attachment id")),
    responses((status = 200, description = "the stored bytes, with their own content type (always served as a download)", content_type = "application/octet-stream", body = Vec<u8>)),
)]
pub(crate) async fn attachment_content(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    let a = scope.global_attachment(&state.db, id).await?;
    super::results::send_attachment(&state, id, &a.meta).await
}
