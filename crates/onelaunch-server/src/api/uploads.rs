//! `/upload/session`, `/upload/test-result`, attachments, fixtures and raw result
//! files (`/upload/file`): everything a CI job sends into a launch.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use onelaunch_api::{self as api, Id};
use serde::Deserialize;
use serde_json::json;

use super::extract::*;
use crate::access::Scope;
use crate::error::{ServerError, ServerResult};
use crate::ingest::limits;
use crate::AppState;

#[derive(Deserialize)]
pub(crate) struct ManualQuery {
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) manual: Option<bool>,
}

pub(crate) async fn create_session(
    State(state): State<AppState>,
    scope: Scope,
    Query(_q): Query<ManualQuery>,
    ApiJson(mut req): ApiJson<api::SessionCreate>,
) -> ServerResult<Response> {
    limits::bound_environment(&mut req.environment);
    let (launch, run) = match (req.job_run_id, req.launch_id) {
        (Some(jr), _) => {
            let run = scope.job_run(&state.db, jr).await?;
            (scope.launch(&state.db, run.launch_id).await?, Some(run))
        }
        (None, Some(l)) => (scope.launch(&state.db, l).await?, None),
        (None, None) => return Err(ServerError::bad("a session needs `jobRunId` or `launchId`")),
    };
    if launch.closed {
        return Err(ServerError::launch_closed(launch.id));
    }
    let s = crate::db::results::create_session(
        &state.db,
        launch.project_id,
        launch.id,
        run.as_ref().map(|r| r.id),
        &req.environment,
    )
    .await?;
    crate::db::launches::touch(&state.db, launch.id).await?;
    Ok(ok_json(s.to_dto(run.map(|r| r.job_id))))
}

pub(crate) async fn upload_results(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(mut req): ApiJson<api::UploadResults>,
) -> ServerResult<Response> {
    let session = scope.session(&state.db, req.test_session_id).await?;
    limits::bound_results(&mut req.results)?;
    let refs = crate::db::results::ingest_results(&state.db, &session, &req.results).await?;
    crate::db::launches::touch(&state.db, session.launch_id).await?;
    let ids = refs.iter().map(|r| r.id).collect();
    Ok(ok_json(api::UploadResultsResponse {
        results: refs,
        result_ids: ids,
    }))
}

pub(crate) async fn upload_attachment(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    mp: Multipart,
) -> ServerResult<Response> {
    let owner = scope.result(&state.db, id).await?;
    let answer = store_attachments(&state, owner.id, mp).await?;
    crate::db::launches::touch(&state.db, owner.launch_id).await?;
    Ok(answer)
}

/// Attachments of a fixture are kept with the result the fixture belongs to,
/// where fixture steps reference them by file name.
pub(crate) async fn upload_fixture_attachment(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    mp: Multipart,
) -> ServerResult<Response> {
    let owner = scope.fixture_result(&state.db, id).await?;
    let answer = store_attachments(&state, owner.id, mp).await?;
    crate::db::launches::touch(&state.db, owner.launch_id).await?;
    Ok(answer)
}

/// Stores every multipart `file` part as an attachment of a result.
pub(crate) async fn store_attachments(
    state: &AppState,
    result_id: Id,
    mut mp: Multipart,
) -> ServerResult<Response> {
    let mut n = 0;
    while let Some(field) = mp.next_field().await.map_err(multipart_err)? {
        let file_name = field
            .file_name()
            .map(str::to_string)
            .filter(|f| !f.is_empty())
            .ok_or_else(|| ServerError::bad("multipart part `file` needs a file name"))?;
        limits::check_file_name(&file_name).map_err(ServerError::bad)?;
        let content_type = field.content_type().map(str::to_string);
        let bytes = field.bytes().await.map_err(multipart_err)?;
        let sha = state.blobs.put(&bytes).await?;
        crate::db::results::put_attachment(
            &state.db,
            result_id,
            &file_name,
            content_type.as_deref(),
            bytes.len() as i64,
            &sha,
        )
        .await?;
        n += 1;
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "filesCount": n }))).into_response())
}

pub(crate) async fn upload_fixtures(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(mut req): ApiJson<api::UploadFixtures>,
) -> ServerResult<Response> {
    let owner = scope.result(&state.db, id).await?;
    limits::bound_fixtures(&mut req.fixtures)?;
    let ids = crate::db::results::put_fixtures(&state.db, owner.id, &req.fixtures).await?;
    crate::db::launches::touch(&state.db, owner.launch_id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "resultIds": ids }))).into_response())
}

#[derive(Deserialize)]
pub(crate) struct SessionIdQuery {
    #[serde(deserialize_with = "api::flex::id")]
    pub(crate) id: Id,
}

/// Raw Allure result files (and JUnit XML), parsed on the server by the same
/// model crate the CLI uses. Good files are stored even when others are bad;
/// bad ones are named in a 400 answer.
pub(crate) async fn upload_files(
    State(state): State<AppState>,
    scope: Scope,
    Query(q): Query<SessionIdQuery>,
    mut mp: Multipart,
) -> ServerResult<Response> {
    use crate::ingest::decode::RawFile;
    let session = scope.session(&state.db, q.id).await?;
    let mut results = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut files = 0usize;
    while let Some(field) = mp.next_field().await.map_err(multipart_err)? {
        let name = field
            .file_name()
            .map(str::to_string)
            .filter(|f| !f.is_empty())
            .ok_or_else(|| ServerError::bad("multipart part `file` needs a file name"))?;
        let content_type = field.content_type().map(str::to_string);
        let bytes = field.bytes().await.map_err(multipart_err)?;
        files += 1;
        let kind = match crate::ingest::decode::raw_file(&name, &bytes) {
            Ok(RawFile::Results(rs)) => {
                results.extend(rs);
                continue;
            }
            Ok(RawFile::Container) => "container",
            Ok(RawFile::Other) => "file",
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let sha = state.blobs.put(&bytes).await?;
        crate::db::results::put_session_file(
            &state.db,
            session.id,
            &name,
            kind,
            &sha,
            bytes.len() as i64,
            content_type.as_deref().filter(|_| kind == "file"),
        )
        .await?;
    }
    for chunk in results.chunks(500) {
        crate::db::results::ingest_results(&state.db, &session, chunk).await?;
    }
    apply_session_containers(&state, &session).await?;
    crate::db::results::resolve_session_attachments(&state.db, session.id).await?;
    crate::db::launches::touch(&state.db, session.launch_id).await?;
    if !problems.is_empty() {
        return Err(ServerError::bad(format!(
            "{} of {files} files were refused (the others were stored): {}",
            problems.len(),
            problems.join("; ")
        )));
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "filesCount": files }))).into_response())
}

/// Applies the fixtures of every container uploaded in a session to the
/// session's results (idempotent: fixtures are unique per result and uuid).
pub(crate) async fn apply_session_containers(
    state: &AppState,
    session: &crate::db::results::SessionRow,
) -> ServerResult<()> {
    let mut containers = Vec::new();
    for (_, sha) in crate::db::results::session_files(&state.db, session.id, "container").await? {
        if let Some(bytes) = state.blobs.get(&sha).await? {
            if let Ok(c) = onelaunch_model::parse_container(&bytes) {
                containers.push(c);
            }
        }
    }
    if containers.is_empty() {
        return Ok(());
    }
    let by_result = onelaunch_model::fixtures_by_result(&containers);
    let uuids: Vec<String> = by_result.keys().cloned().collect();
    for (uuid, id) in
        crate::db::results::result_ids_by_uuid(&state.db, session.launch_id, &uuids).await?
    {
        if let Some(fx) = by_result.get(&uuid) {
            crate::db::results::put_fixtures(&state.db, id, fx).await?;
            for f in fx {
                for src in onelaunch_model::fixture_attachment_sources(f) {
                    crate::db::results::put_attachment_ref(&state.db, id, &src).await?;
                }
            }
        }
    }
    Ok(())
}

pub(crate) async fn upload_archive() -> ServerResult<Response> {
    Err(ServerError::bad(
        "archives are not accepted; send the result files themselves to /api/upload/file?id=<session>",
    ))
}
