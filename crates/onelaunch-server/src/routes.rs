//! HTTP handlers. Every route is served under both `/api` and `/api/rs`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use onelaunch_api::{self as api, Id};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::closing;
use crate::error::{ServerError, ServerResult};
use crate::limits;
use crate::store;
use crate::AppState;

/// JSON body extractor that ignores the content type and answers malformed
/// bodies with a 400 naming the field (or 413 when too large).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ServerError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ServerError::PayloadTooLarge(format!(
                    "request body is larger than the {} bytes a JSON request may have",
                    crate::limits::MAX_JSON_BODY
                ))
            } else {
                ServerError::bad(e.body_text())
            }
        })?;
        crate::decode::json_body(&bytes).map(ApiJson)
    }
}

pub fn api_router() -> Router<AppState> {
    Router::new()
        .route("/uaa/oauth/token", post(oauth_token))
        .route("/project", post(create_project).get(list_projects))
        .route("/project/{id}/token", post(create_project_token))
        .route("/launch", post(create_launch).get(list_launches))
        .route("/launch/{id}", get(get_launch).delete(delete_launch))
        .route("/launch/{id}/close", post(close_launch))
        .route("/launch/{id}/reopen", post(reopen_launch))
        .route("/launch/{id}/progress", get(launch_progress))
        .route("/launch/{id}/statistic", get(launch_statistic))
        .route("/launch/{id}/job", get(launch_jobs))
        .route("/launch/named-env/bulk", post(named_env_bulk))
        .route("/launch/category/bulk", post(category_bulk))
        .route("/launch/error/bulk", post(accept_bulk))
        .route("/launch/quality-gate/bulk", post(accept_bulk))
        .route(
            "/launch/attachment",
            post(launch_attachment).layer(limits::multipart_limit()),
        )
        .route("/upload/start", post(upload_start))
        .route("/upload/run", post(upload_start))
        .route("/upload/stop", post(upload_stop))
        .route("/upload/jobrun", get(find_job_run))
        .route("/upload/session", post(create_session))
        .route("/upload/test-result", post(upload_results))
        .route(
            "/upload/test-result/{id}/attachment",
            post(upload_attachment).layer(limits::multipart_limit()),
        )
        .route(
            "/upload/test-result/{id}/test-fixture-result",
            post(upload_fixtures),
        )
        .route(
            "/upload/test-fixture-result/{id}/attachment",
            post(upload_fixture_attachment).layer(limits::multipart_limit()),
        )
        .route(
            "/upload/file",
            post(upload_files).layer(limits::multipart_limit()),
        )
        .route(
            "/upload",
            post(upload_files).layer(limits::multipart_limit()),
        )
        .route("/upload/archive", post(upload_archive))
        .route("/job", get(find_job))
        .route("/jobrun/{id}", get(get_job_run))
        .route("/jobrun/{id}/plan", get(job_run_plan))
        .route("/testresult", get(list_results))
        .route("/testresult/{id}", get(get_result))
        .route("/attachment/{id}/content", get(attachment_content))
        .merge(crate::closing::router())
        .merge(crate::server_led::router())
}

// ---------------------------------------------------------------- helpers

pub(crate) async fn launch_for(
    state: &AppState,
    auth: &Auth,
    id: Id,
) -> ServerResult<store::LaunchRow> {
    let l = store::get_launch(&state.db, id)
        .await?
        .ok_or_else(|| ServerError::not_found("launch", id))?;
    auth.check_project(l.project_id, "launch", id)?;
    Ok(l)
}

async fn job_run_for(state: &AppState, auth: &Auth, id: Id) -> ServerResult<store::JobRunRow> {
    let r = store::get_job_run(&state.db, id)
        .await?
        .ok_or_else(|| ServerError::not_found("job run", id))?;
    auth.check_project(r.project_id, "job run", id)?;
    Ok(r)
}

async fn project_for(state: &AppState, auth: &Auth, id: Id) -> ServerResult<()> {
    auth.check_project(id, "project", id)?;
    if !store::project_exists(&state.db, id).await? {
        return Err(ServerError::not_found("project", id));
    }
    Ok(())
}

async fn result_for(state: &AppState, auth: &Auth, id: Id) -> ServerResult<store::ResultOwner> {
    let r = store::result_owner(&state.db, id)
        .await?
        .ok_or_else(|| ServerError::not_found("test result", id))?;
    auth.check_project(r.project_id, "test result", id)?;
    Ok(r)
}

fn ok_json<T: serde::Serialize>(v: T) -> Response {
    Json(v).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageQuery {
    #[serde(default, deserialize_with = "api::flex::opt_id")]
    project_id: Option<Id>,
    #[serde(default)]
    page: Option<i64>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    search: Option<String>,
}

fn page_size(page: Option<i64>, size: Option<i64>) -> (i64, i64) {
    (page.unwrap_or(0).max(0), size.unwrap_or(20).clamp(1, 1000))
}

/// The project a list request is about: the given one, or the token's own, or 1.
fn project_of(auth: &Auth, given: Option<Id>) -> Id {
    given.or(auth.project_id).unwrap_or(1)
}

// ---------------------------------------------------------------- auth and projects

async fn oauth_token(State(state): State<AppState>, req: Request) -> ServerResult<Response> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    let mut fields: HashMap<String, String> = HashMap::new();
    if is_multipart {
        let mut mp = Multipart::from_request(req, &state)
            .await
            .map_err(|e| ServerError::bad(e.body_text()))?;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ServerError::bad(e.body_text()))?
        {
            let name = field.name().unwrap_or_default().to_string();
            let text = field
                .text()
                .await
                .map_err(|e| ServerError::bad(e.body_text()))?;
            fields.insert(name, text);
        }
    } else {
        let bytes = Bytes::from_request(req, &state)
            .await
            .map_err(|e| ServerError::bad(e.body_text()))?;
        for (k, v) in url::form_urlencoded::parse(&bytes) {
            fields.insert(k.into_owned(), v.into_owned());
        }
    }
    if fields.get("grant_type").map(String::as_str) != Some("apitoken") {
        return Err(ServerError::bad("field `grant_type`: expected `apitoken`"));
    }
    let token = fields
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ServerError::bad("field `token` is required"))?;
    let id = crate::auth::api_token_id(&state, token)
        .await?
        .ok_or(ServerError::Unauthorized)?;
    let access = store::create_access_token(&state.db, id).await?;
    Ok(ok_json(api::OAuthToken {
        access_token: access,
        token_type: "bearer".into(),
        expires_in: crate::auth::ACCESS_TOKEN_SECONDS,
        scope: fields
            .get("scope")
            .cloned()
            .unwrap_or_else(|| "openid".into()),
        jti: String::new(),
    }))
}

async fn create_project(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<api::ProjectCreate>,
) -> ServerResult<Response> {
    auth.require_admin()?;
    let p = store::create_project(&state.db, &req.name).await?;
    Ok(ok_json(p))
}

async fn list_projects(State(state): State<AppState>, auth: Auth) -> ServerResult<Response> {
    let projects = store::list_projects(&state.db, auth.project_id).await?;
    let n = projects.len() as i64;
    Ok(ok_json(api::Page::new(projects, n, 0, n.max(1))))
}

async fn create_project_token(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    auth.require_admin()?;
    project_for(&state, &auth, id).await?;
    let token = store::create_project_token(&state.db, id).await?;
    Ok((StatusCode::CREATED, Json(api::TokenCreated { token })).into_response())
}

// ---------------------------------------------------------------- launches

async fn create_launch(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(mut req): ApiJson<api::LaunchCreate>,
) -> ServerResult<Response> {
    project_for(&state, &auth, req.project_id).await?;
    limits::bound_launch(&mut req)?;
    let l = store::create_launch(&state.db, &req).await?;
    tracing::info!(launch = l.id, project = l.project_id, "launch created");
    Ok(ok_json(l.to_dto(&state.public_url)))
}

async fn get_launch(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    let l = launch_for(&state, &auth, id).await?;
    let mut dto = l.to_dto(&state.public_url);
    dto.participants = Some(closing::participants(&state.db, l.id, l.expected_job_runs).await?);
    Ok(ok_json(dto))
}

async fn list_launches(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<PageQuery>,
) -> ServerResult<Response> {
    let project = project_of(&auth, q.project_id);
    project_for(&state, &auth, project).await?;
    let (page, size) = page_size(q.page, q.size);
    let (rows, total) =
        store::list_launches(&state.db, project, q.search.as_deref(), page, size).await?;
    let content = rows.iter().map(|l| l.to_dto(&state.public_url)).collect();
    Ok(ok_json(api::Page::new(content, total, page, size)))
}

async fn delete_launch(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    launch_for(&state, &auth, id).await?;
    store::delete_launch(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn close_launch(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    let l = launch_for(&state, &auth, id).await?;
    if !l.closed {
        store::set_launch_closed(&state.db, id, true).await?;
        tracing::info!(launch = id, "launch closed");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn reopen_launch(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    let l = launch_for(&state, &auth, id).await?;
    if l.closed {
        store::set_launch_closed(&state.db, id, false).await?;
        tracing::info!(launch = id, "launch reopened");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn launch_progress(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    launch_for(&state, &auth, id).await?;
    // Results are indexed synchronously on upload, so a launch is always ready.
    Ok(ok_json(api::LaunchProgress { ready: true }))
}

async fn launch_statistic(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    launch_for(&state, &auth, id).await?;
    Ok(ok_json(store::launch_statistic(&state.db, id).await?))
}

async fn launch_jobs(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    launch_for(&state, &auth, id).await?;
    let runs = store::launch_job_runs(&state.db, id).await?;
    let dtos: Vec<_> = runs.iter().map(|r| r.to_dto(&state.public_url)).collect();
    Ok(ok_json(dtos))
}

async fn bulk_refs(
    state: AppState,
    auth: Auth,
    req: api::LaunchBulk,
    kind: &str,
) -> ServerResult<Response> {
    let l = launch_for(&state, &auth, req.launch_id).await?;
    limits::bound_bulk(&req.items)?;
    let refs = store::launch_refs(&state.db, l.id, kind, &req.items).await?;
    Ok(ok_json(refs))
}

async fn named_env_bulk(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<api::LaunchBulk>,
) -> ServerResult<Response> {
    bulk_refs(state, auth, req, "named-env").await
}

async fn category_bulk(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<api::LaunchBulk>,
) -> ServerResult<Response> {
    bulk_refs(state, auth, req, "category").await
}

/// Launch-level errors and quality-gate results are accepted (the launch must
/// be visible to the caller) but not stored.
async fn accept_bulk(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<api::LaunchBulk>,
) -> ServerResult<Response> {
    launch_for(&state, &auth, req.launch_id).await?;
    Ok(ok_json(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LaunchIdQuery {
    #[serde(deserialize_with = "api::flex::id")]
    launch_id: Id,
}

async fn launch_attachment(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<LaunchIdQuery>,
    mut mp: Multipart,
) -> ServerResult<Response> {
    launch_for(&state, &auth, q.launch_id).await?;
    while let Some(field) = mp.next_field().await.map_err(multipart_err)? {
        let bytes = field.bytes().await.map_err(multipart_err)?;
        state.blobs.put(&bytes).await?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

fn multipart_err(e: axum::extract::multipart::MultipartError) -> ServerError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ServerError::PayloadTooLarge("multipart body is larger than the server accepts".into())
    } else {
        ServerError::bad(format!("multipart body: {}", e.body_text()))
    }
}

// ---------------------------------------------------------------- jobs and job runs

async fn upload_start(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(mut req): ApiJson<api::ExternalRunStart>,
) -> ServerResult<Response> {
    project_for(&state, &auth, req.project_id).await?;
    limits::bound_start(&mut req)?;
    if let Some(id) = req.job_run.id {
        // Triggered or joined by id: answer that job run and its launch.
        let run = job_run_for(&state, &auth, id).await?;
        store::touch_job_run(&state.db, id).await?;
        closing::touch(&state.db, run.launch_id).await?;
        return Ok(ok_json(run.to_external()));
    }
    if let Some(lid) = req.launch.as_ref().and_then(|l| l.id) {
        launch_for(&state, &auth, lid).await?;
    }
    match store::start_run(&state.db, &req).await? {
        store::StartOutcome::Ok(resp) => {
            closing::touch(&state.db, resp.launch_id).await?;
            tracing::info!(
                launch = resp.launch_id,
                job_run = resp.job_run_id,
                "job run started"
            );
            Ok(ok_json(resp))
        }
        store::StartOutcome::LaunchClosed(id) => Err(ServerError::launch_closed(id)),
    }
}

async fn upload_stop(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<api::ExternalRunStop>,
) -> ServerResult<Response> {
    project_for(&state, &auth, req.project_id).await?;
    let run = match req.job_run_id {
        Some(id) => job_run_for(&state, &auth, id).await?,
        None => store::find_job_run(&state.db, req.project_id, &req.job_uid, &req.job_run_uid)
            .await?
            .ok_or_else(|| {
                ServerError::NotFound(format!(
                    "job run {:?} of job {:?} not found in project {}",
                    req.job_run_uid, req.job_uid, req.project_id
                ))
            })?,
    };
    store::stop_job_run(&state.db, &run, req.status.as_deref()).await?;
    closing::touch(&state.db, run.launch_id).await?;
    tracing::info!(job_run = run.id, "job run stopped");
    Ok(ok_json(run.to_external()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobRunQuery {
    #[serde(default, deserialize_with = "api::flex::opt_id")]
    project_id: Option<Id>,
    #[serde(default)]
    job_uid: Option<String>,
    #[serde(default)]
    job_run_uid: Option<String>,
    #[serde(default, deserialize_with = "api::flex::opt_id")]
    job_run_id: Option<Id>,
}

async fn find_job_run(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<JobRunQuery>,
) -> ServerResult<Response> {
    if let Some(id) = q.job_run_id {
        return Ok(ok_json(job_run_for(&state, &auth, id).await?.to_external()));
    }
    let project = project_of(&auth, q.project_id);
    project_for(&state, &auth, project).await?;
    let (Some(job), Some(run)) = (q.job_uid, q.job_run_uid) else {
        return Err(ServerError::bad(
            "query needs `jobRunId`, or `jobUid` and `jobRunUid`",
        ));
    };
    let r = store::find_job_run(&state.db, project, &job, &run)
        .await?
        .ok_or_else(|| {
            ServerError::NotFound(format!("job run {run:?} of job {job:?} not found"))
        })?;
    Ok(ok_json(r.to_external()))
}

async fn get_job_run(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    Ok(ok_json(
        job_run_for(&state, &auth, id)
            .await?
            .to_dto(&state.public_url),
    ))
}

async fn job_run_plan(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    let run = job_run_for(&state, &auth, id).await?;
    // Server-led job runs have a stored plan; CI-led ones none (everything runs).
    crate::server_led::job_run_plan(&state, &run).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobQuery {
    #[serde(default, deserialize_with = "api::flex::opt_id")]
    project_id: Option<Id>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    page: Option<i64>,
    #[serde(default)]
    size: Option<i64>,
}

async fn find_job(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<JobQuery>,
) -> ServerResult<Response> {
    let project = project_of(&auth, q.project_id);
    project_for(&state, &auth, project).await?;
    match q.external_id {
        Some(ext) => {
            let job = store::find_job(&state.db, project, &ext)
                .await?
                .ok_or_else(|| ServerError::NotFound(format!("job {ext:?} not found")))?;
            Ok(ok_json(job.to_dto()))
        }
        None => {
            let (page, size) = page_size(q.page, q.size);
            let jobs = store::list_jobs(&state.db, project).await?;
            let total = jobs.len() as i64;
            let content: Vec<_> = jobs
                .iter()
                .skip((page * size) as usize)
                .take(size as usize)
                .map(store::JobRow::to_dto)
                .collect();
            Ok(ok_json(api::Page::new(content, total, page, size)))
        }
    }
}

// ---------------------------------------------------------------- sessions and results

#[derive(Deserialize)]
struct ManualQuery {
    #[serde(default)]
    #[allow(dead_code)]
    manual: Option<bool>,
}

async fn create_session(
    State(state): State<AppState>,
    auth: Auth,
    Query(_q): Query<ManualQuery>,
    ApiJson(mut req): ApiJson<api::SessionCreate>,
) -> ServerResult<Response> {
    limits::bound_environment(&mut req.environment);
    let (launch, run) = match (req.job_run_id, req.launch_id) {
        (Some(jr), _) => {
            let run = job_run_for(&state, &auth, jr).await?;
            (launch_for(&state, &auth, run.launch_id).await?, Some(run))
        }
        (None, Some(l)) => (launch_for(&state, &auth, l).await?, None),
        (None, None) => return Err(ServerError::bad("a session needs `jobRunId` or `launchId`")),
    };
    if launch.closed {
        return Err(ServerError::launch_closed(launch.id));
    }
    let s = store::create_session(
        &state.db,
        launch.project_id,
        launch.id,
        run.as_ref().map(|r| r.id),
        &req.environment,
    )
    .await?;
    closing::touch(&state.db, launch.id).await?;
    Ok(ok_json(s.to_dto(run.map(|r| r.job_id))))
}

async fn session_for(state: &AppState, auth: &Auth, id: Id) -> ServerResult<store::SessionRow> {
    let s = store::get_session(&state.db, id)
        .await?
        .ok_or_else(|| ServerError::not_found("test session", id))?;
    auth.check_project(s.project_id, "test session", id)?;
    Ok(s)
}

async fn upload_results(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(mut req): ApiJson<api::UploadResults>,
) -> ServerResult<Response> {
    let session = session_for(&state, &auth, req.test_session_id).await?;
    limits::bound_results(&mut req.results)?;
    let refs = store::ingest_results(&state.db, &session, &req.results).await?;
    closing::touch(&state.db, session.launch_id).await?;
    let ids = refs.iter().map(|r| r.id).collect();
    Ok(ok_json(api::UploadResultsResponse {
        results: refs,
        result_ids: ids,
    }))
}

async fn upload_attachment(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
    mp: Multipart,
) -> ServerResult<Response> {
    let owner = result_for(&state, &auth, id).await?;
    let answer = store_attachments(&state, owner.id, mp).await?;
    closing::touch(&state.db, owner.launch_id).await?;
    Ok(answer)
}

/// Attachments of a fixture are kept with the result the fixture belongs to,
/// where fixture steps reference them by file name.
async fn upload_fixture_attachment(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
    mp: Multipart,
) -> ServerResult<Response> {
    let result_id = store::fixture_result_id(&state.db, id)
        .await?
        .ok_or_else(|| ServerError::not_found("test fixture result", id))?;
    let owner = result_for(&state, &auth, result_id)
        .await
        .map_err(|_| ServerError::not_found("test fixture result", id))?;
    let answer = store_attachments(&state, owner.id, mp).await?;
    closing::touch(&state.db, owner.launch_id).await?;
    Ok(answer)
}

/// Stores every multipart `file` part as an attachment of a result.
async fn store_attachments(
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
        store::put_attachment(
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

async fn upload_fixtures(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
    ApiJson(mut req): ApiJson<api::UploadFixtures>,
) -> ServerResult<Response> {
    let owner = result_for(&state, &auth, id).await?;
    limits::bound_fixtures(&mut req.fixtures)?;
    let ids = store::put_fixtures(&state.db, owner.id, &req.fixtures).await?;
    closing::touch(&state.db, owner.launch_id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "resultIds": ids }))).into_response())
}

#[derive(Deserialize)]
struct SessionIdQuery {
    #[serde(deserialize_with = "api::flex::id")]
    id: Id,
}

/// Raw Allure result files (and JUnit XML), parsed on the server by the same
/// model crate the CLI uses. Good files are stored even when others are bad;
/// bad ones are named in a 400 answer.
async fn upload_files(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<SessionIdQuery>,
    mut mp: Multipart,
) -> ServerResult<Response> {
    use crate::decode::RawFile;
    let session = session_for(&state, &auth, q.id).await?;
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
        let kind = match crate::decode::raw_file(&name, &bytes) {
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
        store::put_session_file(
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
        store::ingest_results(&state.db, &session, chunk).await?;
    }
    apply_session_containers(&state, &session).await?;
    store::resolve_session_attachments(&state.db, session.id).await?;
    closing::touch(&state.db, session.launch_id).await?;
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
async fn apply_session_containers(
    state: &AppState,
    session: &store::SessionRow,
) -> ServerResult<()> {
    let mut containers = Vec::new();
    for (_, sha) in store::session_files(&state.db, session.id, "container").await? {
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
    for (uuid, id) in store::result_ids_by_uuid(&state.db, session.launch_id, &uuids).await? {
        if let Some(fx) = by_result.get(&uuid) {
            store::put_fixtures(&state.db, id, fx).await?;
            for f in fx {
                for src in onelaunch_model::fixture_attachment_sources(f) {
                    store::put_attachment_ref(&state.db, id, &src).await?;
                }
            }
        }
    }
    Ok(())
}

async fn upload_archive() -> ServerResult<Response> {
    Err(ServerError::bad(
        "archives are not accepted; send the result files themselves to /api/upload/file?id=<session>",
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultsQuery {
    #[serde(deserialize_with = "api::flex::id")]
    launch_id: Id,
    #[serde(default, deserialize_with = "api::flex::opt_id")]
    job_run_id: Option<Id>,
    #[serde(default)]
    page: Option<i64>,
    #[serde(default)]
    size: Option<i64>,
}

async fn list_results(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ResultsQuery>,
) -> ServerResult<Response> {
    launch_for(&state, &auth, q.launch_id).await?;
    let (page, size) = page_size(q.page, q.size);
    let (rows, total) =
        store::list_results(&state.db, q.launch_id, q.job_run_id, page, size).await?;
    Ok(ok_json(api::Page::new(rows, total, page, size)))
}

async fn get_result(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    let owner = result_for(&state, &auth, id).await?;
    let body = store::result_body(&state.db, id)
        .await?
        .unwrap_or(Value::Null);
    let attachments: Vec<Value> = store::result_attachments(&state.db, id)
        .await?
        .into_iter()
        .map(|(aid, file, name, ct, size, sha)| {
            json!({"id": aid, "fileName": file, "name": name, "contentType": ct, "size": size, "stored": sha.is_some()})
        })
        .collect();
    let fixtures = store::result_fixtures(&state.db, id).await?;
    Ok(ok_json(json!({
        "id": owner.id,
        "launchId": owner.launch_id,
        "result": body,
        "attachments": attachments,
        "fixtures": fixtures,
    })))
}

async fn attachment_content(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
) -> ServerResult<Response> {
    let row = store::attachment_by_id(&state.db, id)
        .await?
        .ok_or_else(|| ServerError::not_found("attachment", id))?;
    result_for(&state, &auth, row.0)
        .await
        .map_err(|_| ServerError::not_found("attachment", id))?;
    let sha = row
        .2
        .ok_or_else(|| ServerError::NotFound(format!("attachment {id} has no content yet")))?;
    let bytes = state
        .blobs
        .get(&sha)
        .await?
        .ok_or_else(|| ServerError::NotFound(format!("attachment {id} content is missing")))?;
    let ct = row.1.unwrap_or_else(|| "application/octet-stream".into());
    Ok(([(header::CONTENT_TYPE, ct)], bytes).into_response())
}
