//! `/upload/session`, `/upload/test-result`, attachments, fixtures and raw result
//! files (`/upload/file`): everything a CI job sends into a launch.

use axum::extract::multipart::Field;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use futures::TryStreamExt;
use onelaunch_api::{self as api, Id};
use serde::{Deserialize, Serialize};

use super::extract::*;
use crate::access::Scope;
use crate::error::{ServerError, ServerResult};
use crate::ingest::{self, decode::RawFile, limits, SessionFileKind};
use crate::AppState;
use onelaunch_model::FileKind;

/// A session in a job run (`jobRunId`) or directly in a launch (`launchId`;
/// the Allure 3 plugin adds `?manual=true`, which changes nothing here).
#[utoipa::path(
    post,
    path = "/upload/session",
    tag = "uploads",
    summary = "Open an upload session",
    request_body = api::SessionCreate,
    params(("manual" = Option<bool>, Query, description = "sent by the Allure 3 plugin; changes nothing")),
    responses((status = 200, description = "OK", body = api::SessionDto)),
)]
pub(crate) async fn create_session(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(mut req): ApiJson<api::SessionCreate>,
) -> ServerResult<Json<api::SessionDto>> {
    limits::bound_environment(&mut req.environment);
    limits::bound_session_ci(&mut req.ci)?;
    let (launch, run) = match (req.job_run_id, req.launch_id) {
        (Some(jr), _) => {
            let run = scope.job_run(&state.db, jr).await?;
            (scope.launch(&state.db, run.launch_id).await?, Some(run))
        }
        (None, Some(l)) => (scope.launch(&state.db, l).await?, None),
        (None, None) => return Err(ServerError::bad("a session needs `jobRunId` or `launchId`")),
    };
    let s = ingest::open_session(
        &state.db,
        &launch,
        run.as_ref().map(|r| r.id),
        &req.environment,
        req.ci.as_ref(),
        req.track,
    )
    .await?;
    Ok(Json(s.to_dto(run.map(|r| r.job_id))))
}

/// `POST /upload/session/{id}/close`: the client's upload through this
/// session ended (onelaunch extension). Idempotent, and accepted on a closed
/// launch: it adds nothing to the launch.
#[utoipa::path(
    post,
    path = "/upload/session/{id}/close",
    tag = "uploads",
    summary = "Close an upload session",
    params(("id" = i64, Path, description = "session id")),
    responses((status = 204, description = "closed")),
)]
pub(crate) async fn close_session(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<StatusCode> {
    let session = scope.session(&state.db, id).await?;
    ingest::close_session(&state.db, &session).await?;
    tracing::info!(
        session = id,
        launch = session.launch_id,
        "upload session closed"
    );
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/upload/test-result",
    tag = "uploads",
    summary = "Upload test results",
    request_body = api::UploadResults,
    responses((status = 200, description = "OK", body = api::UploadResultsResponse)),
)]
pub(crate) async fn upload_results(
    State(state): State<AppState>,
    scope: Scope,
    request: axum::extract::Request,
) -> ServerResult<Json<api::UploadResultsResponse>> {
    // The room for the batch in decoded form, held until the answer: the
    // decoded batch waits for the writer. A body of known length takes it
    // before it is read, so that batches beyond what the room holds wait in
    // their connections (the client sends no faster than they are taken),
    // not read into the server's memory; one of unknown length once it is read.
    let sender = ingest::Sender::of(scope.project_id);
    let early = match RawJson::announced(&request) {
        Some(n) => Some(state.decoding.share(sender, n).await?),
        None => None,
    };
    let body =
        <RawJson as axum::extract::FromRequest<AppState>>::from_request(request, &state).await?;
    let _share = match early {
        Some(share) => share,
        None => state.decoding.share(sender, body.0.len()).await?,
    };
    let mut req: api::UploadResults = body.decode()?;
    let session = scope.session(&state.db, req.test_session_id).await?;
    // The stored JSON's size is checked as it is built (`db::results::ResultBatch`).
    limits::cut_results(&mut req.results);
    let (refs, new) = ingest::results_counted(&state.db, &session, req.results).await?;
    let ids = refs.iter().map(|r| r.id).collect();
    Ok(Json(api::UploadResultsResponse {
        results: refs,
        result_ids: ids,
        new_results: Some(new),
    }))
}

/// `{"filesCount": n}`: how many files of a multipart upload were taken.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FilesAccepted {
    files_count: usize,
}

#[utoipa::path(
    post,
    path = "/upload/test-result/{id}/attachment",
    tag = "uploads",
    summary = "Attach files to a test result",
    request_body(content = super::openapi::FileParts, content_type = "multipart/form-data", description = "one part per file; the part's file name names the file"),
    params(("id" = i64, Path, description = "test result id")),
    responses((status = 202, description = "stored", body = FilesAccepted)),
)]
pub(crate) async fn upload_attachment(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    mp: Multipart,
) -> ServerResult<(StatusCode, Json<FilesAccepted>)> {
    let owner = scope.result(&state.db, id).await?;
    store_attachments(&state, ingest::Sender::of(scope.project_id), &owner, mp).await
}

/// Attachments of a fixture are kept with the result the fixture belongs to,
/// where fixture steps reference them by file name.
#[utoipa::path(
    post,
    path = "/upload/test-fixture-result/{id}/attachment",
    tag = "uploads",
    summary = "Attach files to a fixture",
    request_body(content = super::openapi::FileParts, content_type = "multipart/form-data", description = "one part per file; the part's file name names the file"),
    params(("id" = i64, Path, description = "fixture result id")),
    responses((status = 202, description = "stored", body = FilesAccepted)),
)]
pub(crate) async fn upload_fixture_attachment(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    mp: Multipart,
) -> ServerResult<(StatusCode, Json<FilesAccepted>)> {
    let owner = scope.fixture_result(&state.db, id).await?;
    store_attachments(&state, ingest::Sender::of(scope.project_id), &owner, mp).await
}

/// Most distinct test results one bulk attachment request may name.
const MAX_BULK_RESULTS: usize = 10_000;

/// Most `file` parts in one bulk attachment request (the CLI sends at most
/// 100): each is held until the request's rows are written.
const MAX_BULK_FILES: usize = 1_000;

/// The attachments of many results in one request (onelaunch extension of
/// `…/test-result/{id}/attachment`, which costs a request per result). Parts
/// in order: `result` (a test result id, as text), then the `file` parts of
/// that result (the part's file name names the file), then the next `result`.
/// A part refused (a result not found in the token's projects, a bad file
/// name) is listed in the answer with its reason; the others are stored.
/// Re-sending a part is harmless: the same file name of a result points at
/// the bytes sent last.
#[utoipa::path(
    post,
    path = "/upload/attachment/bulk",
    tag = "uploads",
    summary = "Attach files to several test results",
    request_body(content = super::openapi::BulkFileParts, content_type = "multipart/form-data", description = "a `result` part (test result id) followed by its `file` parts, repeated"),
    responses((status = 200, description = "stored, with the parts refused", body = api::BulkAttachmentsResponse)),
)]
pub(crate) async fn upload_attachments_bulk(
    State(state): State<AppState>,
    scope: Scope,
    mut mp: Multipart,
) -> ServerResult<Json<api::BulkAttachmentsResponse>> {
    let sender = ingest::Sender::of(scope.project_id);
    let mut current: Option<Id> = None;
    let mut ids: std::collections::HashSet<Id> = std::collections::HashSet::new();
    let mut parts = Vec::new();
    let mut refused: Vec<api::RefusedAttachment> = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(multipart_err)? {
        match field.name() {
            Some("result") => {
                let text = short_text(field).await?;
                let id = parse_int("result", &text)?;
                if !ids.contains(&id) && ids.len() >= MAX_BULK_RESULTS {
                    return Err(ServerError::bad(format!(
                        "multipart part `result`: at most {MAX_BULK_RESULTS} test results per request"
                    )));
                }
                ids.insert(id);
                current = Some(id);
            }
            Some("file") => {
                let Some(result_id) = current else {
                    return Err(ServerError::bad(
                        "multipart part `file` must follow a `result` part naming its test result",
                    ));
                };
                if parts.len() + refused.len() >= MAX_BULK_FILES {
                    return Err(ServerError::bad(format!(
                        "multipart part `file`: at most {MAX_BULK_FILES} files per request"
                    )));
                }
                let file_name = field.file_name().unwrap_or_default().to_string();
                if let Err(message) = limits::check_file_name(&file_name) {
                    refused.push(api::RefusedAttachment {
                        result_id,
                        file_name,
                        code: "bad_request".into(),
                        message,
                    });
                    continue;
                }
                let content_type = field.content_type().map(str::to_string);
                let stored = ingest::receive(&state.blobs, sender, chunks(field)).await;
                let stored = drain_if_full(&mut mp, stored).await?;
                parts.push((result_id, file_name, content_type, stored));
            }
            other => {
                return Err(ServerError::bad(format!(
                    "multipart part {:?}: expected `result` (a test result id) or `file`",
                    other.unwrap_or_default()
                )))
            }
        }
    }
    let ids: Vec<Id> = ids.into_iter().collect();
    let owners = scope.results(&state.db, &ids).await?;
    let mut received = Vec::with_capacity(parts.len());
    for (result_id, file_name, content_type, stored) in parts {
        match owners.get(&result_id) {
            Some(owner) => received.push(ingest::ReceivedAttachment {
                owner: owner.clone(),
                file_name,
                content_type,
                stored,
            }),
            None => refused.push(api::RefusedAttachment {
                result_id,
                file_name,
                code: "not_found".into(),
                message: format!("test result {result_id} not found"),
            }),
        }
    }
    let files_count = received.len();
    ingest::attachments(&state.db, received).await?;
    Ok(Json(api::BulkAttachmentsResponse {
        files_count,
        refused,
    }))
}

/// A short text part (an id), read up to a bound.
async fn short_text(field: Field<'_>) -> ServerResult<String> {
    const MAX: usize = 64;
    let name = field.name().unwrap_or_default().to_string();
    limits::short_text(chunks(field), MAX)
        .await
        .map_err(|e| match e {
            limits::TextRefused::Read(e) => e,
            limits::TextRefused::TooLong => ServerError::bad(format!(
                "multipart part `{name}` is longer than {MAX} bytes"
            )),
            limits::TextRefused::NotUtf8 => {
                ServerError::bad(format!("multipart part `{name}` is not UTF-8 text"))
            }
        })
}

/// A multipart part as a stream of chunks (never read whole).
pub(super) fn chunks(
    field: Field<'_>,
) -> impl futures::Stream<Item = ServerResult<axum::body::Bytes>> + Unpin + '_ {
    field.map_err(multipart_err)
}

/// When the store is full, reads (and discards) the parts not yet read, so
/// the client gets the 503 `storage_full` answer instead of a connection
/// closed under the body it is still sending.
async fn drain_if_full<T>(mp: &mut Multipart, r: ServerResult<T>) -> ServerResult<T> {
    if matches!(r, Err(ServerError::StorageFull(_))) {
        while let Ok(Some(mut field)) = mp.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
    }
    r
}

/// Stores every multipart `file` part as an attachment of a result, each
/// streamed into the blob store.
async fn store_attachments(
    state: &AppState,
    sender: ingest::Sender,
    owner: &crate::db::results::ResultOwner,
    mut mp: Multipart,
) -> ServerResult<(StatusCode, Json<FilesAccepted>)> {
    let mut n = 0;
    while let Some(field) = mp.next_field().await.map_err(multipart_err)? {
        let file_name = field
            .file_name()
            .map(str::to_string)
            .filter(|f| !f.is_empty())
            .ok_or_else(|| ServerError::bad("multipart part `file` needs a file name"))?;
        limits::check_file_name(&file_name).map_err(ServerError::bad)?;
        let content_type = field.content_type().map(str::to_string);
        let stored = ingest::receive(&state.blobs, sender, chunks(field)).await;
        let stored = drain_if_full(&mut mp, stored).await?;
        ingest::attachment(
            &state.db,
            owner,
            &file_name,
            content_type.as_deref(),
            &stored,
        )
        .await?;
        n += 1;
    }
    Ok((StatusCode::ACCEPTED, Json(FilesAccepted { files_count: n })))
}

/// `{"resultIds": [...]}`: the stored fixtures' ids.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FixturesAccepted {
    result_ids: Vec<Id>,
}

#[utoipa::path(
    post,
    path = "/upload/test-result/{id}/test-fixture-result",
    tag = "uploads",
    summary = "Upload a test result's fixtures",
    request_body = api::UploadFixtures,
    params(("id" = i64, Path, description = "test result id")),
    responses((status = 202, description = "stored", body = FixturesAccepted)),
)]
pub(crate) async fn upload_fixtures(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
    ApiJson(mut req): ApiJson<api::UploadFixtures>,
) -> ServerResult<(StatusCode, Json<FixturesAccepted>)> {
    let owner = scope.result(&state.db, id).await?;
    limits::bound_fixtures(&mut req.fixtures)?;
    let ids = ingest::fixtures(&state.db, &owner, &req.fixtures).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(FixturesAccepted { result_ids: ids }),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SessionIdQuery {
    #[serde(deserialize_with = "api::flex::id")]
    pub(crate) id: Id,
}

/// Raw Allure result files (and JUnit XML, and Allure 3 `*-globals.json`),
/// parsed on the server by the same model crate the CLI uses. Good files are stored even when others are bad;
/// bad ones are named in a 400 answer.
#[utoipa::path(
    post,
    path = "/upload/file",
    tag = "uploads",
    summary = "Upload raw result files, parsed on the server; also at POST /upload",
    request_body(content = super::openapi::FileParts, content_type = "multipart/form-data", description = "one part per file; the part's file name names the file"),
    params(SessionIdQuery),
    responses((status = 202, description = "stored", body = FilesAccepted)),
)]
pub(crate) async fn upload_files(
    State(state): State<AppState>,
    scope: Scope,
    Query(q): Query<SessionIdQuery>,
    mut mp: Multipart,
) -> ServerResult<(StatusCode, Json<FilesAccepted>)> {
    let session = scope.session(&state.db, q.id).await?;
    let sender = ingest::Sender::of(scope.project_id);
    let mut shares = Vec::new();
    let mut results = Vec::new();
    let mut globals = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut files = 0usize;
    while let Some(field) = mp.next_field().await.map_err(multipart_err)? {
        let name = field
            .file_name()
            .map(str::to_string)
            .filter(|f| !f.is_empty())
            .ok_or_else(|| ServerError::bad("multipart part `file` needs a file name"))?;
        let content_type = field.content_type().map(str::to_string);
        files += 1;
        if let Err(problem) = limits::check_file_name(&name) {
            problems.push(problem);
            continue;
        }
        let kind = match onelaunch_model::classify(&name) {
            // Results are parsed here, in memory (within the body limit and
            // the server's budget for buffered bodies).
            FileKind::Result | FileKind::JUnit | FileKind::Globals => {
                let holding = !shares.is_empty();
                let buffered = ingest::buffer(&state.blobs, sender, chunks(field), holding).await?;
                let decoded = ingest::decode::raw_file(&name, &buffered.bytes);
                // What the file decoded into is held until the answer: its
                // file's share of the budget with it.
                shares.extend(buffered.into_share());
                match decoded {
                    Ok(RawFile::Results(rs, generated)) => {
                        results.extend(rs);
                        for g in generated {
                            ingest::generated_file(&state.db, &state.blobs, sender, &session, &g)
                                .await?;
                        }
                    }
                    Ok(RawFile::Globals(g)) => globals.push((name, g)),
                    Ok(_) => {}
                    Err(problem) => problems.push(problem),
                }
                continue;
            }
            FileKind::Container => SessionFileKind::Container,
            _ => SessionFileKind::File,
        };
        // Everything else streams into the blob store; a container is read
        // back (verified) to check that it parses.
        let stored = ingest::receive(&state.blobs, sender, chunks(field)).await;
        let stored = drain_if_full(&mut mp, stored).await?;
        if kind == SessionFileKind::Container {
            let bytes = ingest::received_bytes(&state.blobs, &stored).await?;
            if let Err(problem) = ingest::decode::raw_file(&name, &bytes) {
                problems.push(problem);
                continue;
            }
        }
        ingest::session_file(
            &state.db,
            &session,
            &name,
            kind,
            content_type.as_deref(),
            &stored,
        )
        .await?;
    }
    let mut results = results.into_iter().peekable();
    while results.peek().is_some() {
        let chunk: Vec<_> = results.by_ref().take(500).collect();
        ingest::results(&state.db, &session, chunk).await?;
    }
    for (name, g) in &globals {
        ingest::globals(&state.db, &session, name, g).await?;
    }
    ingest::finish_raw_upload(&state.db, &state.blobs, &session).await?;
    if !problems.is_empty() {
        return Err(ServerError::bad(format!(
            "{} of {files} files were refused (the others were stored): {}",
            problems.len(),
            problems.join("; ")
        )));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(FilesAccepted { files_count: files }),
    ))
}

#[utoipa::path(
    post,
    path = "/upload/archive",
    tag = "uploads",
    summary = "Archive upload (not supported: upload the files instead)",
    responses((status = 400, description = "always: archives are not accepted", body = api::ErrorBody)),
)]
pub(crate) async fn upload_archive() -> ServerResult<StatusCode> {
    Err(ServerError::bad(
        "archives are not accepted; send the result files themselves to /api/upload/file?id=<session>",
    ))
}
