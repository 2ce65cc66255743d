//! `/upload/start|run|stop`, `/upload/jobrun`, `/job`, `/jobrun/{id}`,
//! `/jobrun/{id}/plan`: jobs and job runs as CI-led clients see them.

use axum::extract::{Path, Query, State};
use axum::Json;
use onelaunch_api::{self as api, Id};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::*;
use crate::access::Scope;
use crate::error::{ServerError, ServerResult};
use crate::ingest::limits;
use crate::{db, AppState};

#[utoipa::path(
    post,
    path = "/upload/start",
    tag = "job runs",
    summary = "Start a job run (and its launch); also at POST /upload/run",
    request_body = api::ExternalRunStart,
    responses((status = 200, description = "OK", body = api::ExternalRunResponse)),
)]
pub(crate) async fn upload_start(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(mut req): ApiJson<api::ExternalRunStart>,
) -> ServerResult<Json<api::ExternalRunResponse>> {
    scope.project(&state.db, req.project_id).await?;
    limits::bound_start(&mut req)?;
    if let Some(id) = req.job_run.id {
        // Triggered or joined by id: answer that job run and its launch.
        let run = scope.job_run(&state.db, id).await?;
        crate::db::job_runs::touch_job_run(&state.db, id).await?;
        crate::ingest::activity(&state.db, run.launch_id).await?;
        return Ok(Json(with_launch(&state, run.to_external()).await?));
    }
    if let Some(lid) = req.launch.as_ref().and_then(|l| l.id) {
        scope.launch(&state.db, lid).await?;
    }
    match crate::db::job_runs::start_run(&state.db, &req).await? {
        crate::db::job_runs::StartOutcome::Ok(resp) => {
            crate::ingest::activity(&state.db, resp.launch_id).await?;
            tracing::info!(
                launch = resp.launch_id,
                job_run = resp.job_run_id,
                "job run started"
            );
            Ok(Json(with_launch(&state, resp).await?))
        }
        crate::db::job_runs::StartOutcome::LaunchClosed(id) => Err(ServerError::launch_closed(id)),
    }
}

/// A start's answer with its launch's name and page, so the client does
/// not ask for the launch to print them.
async fn with_launch(
    state: &AppState,
    mut resp: api::ExternalRunResponse,
) -> ServerResult<api::ExternalRunResponse> {
    if let Some(l) = crate::db::launches::get_launch(&state.db, resp.launch_id).await? {
        let dto = l.to_dto(&state.public_url);
        resp.launch_url = dto.url;
        resp.launch_name = Some(dto.name);
    }
    Ok(resp)
}

#[utoipa::path(
    post,
    path = "/upload/stop",
    tag = "job runs",
    summary = "Stop a job run",
    request_body = api::ExternalRunStop,
    responses((status = 200, description = "OK", body = api::ExternalRunResponse)),
)]
pub(crate) async fn upload_stop(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<api::ExternalRunStop>,
) -> ServerResult<Json<api::ExternalRunResponse>> {
    scope.project(&state.db, req.project_id).await?;
    let run = match req.job_run_id {
        Some(id) => scope.job_run(&state.db, id).await?,
        None => crate::db::job_runs::find_job_run(
            &state.db,
            req.project_id,
            &req.job_uid,
            &req.job_run_uid,
        )
        .await?
        .ok_or_else(|| {
            ServerError::NotFound(format!(
                "job run {:?} of job {:?} not found in project {}",
                req.job_run_uid, req.job_uid, req.project_id
            ))
        })?,
    };
    crate::db::job_runs::stop_job_run(&state.db, &run, req.status.as_deref()).await?;
    crate::ingest::activity(&state.db, run.launch_id).await?;
    tracing::info!(job_run = run.id, "job run stopped");
    Ok(Json(run.to_external()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobRunQuery {
    #[serde(default, deserialize_with = "api::flex::opt_id")]
    pub(crate) project_id: Option<Id>,
    #[serde(default)]
    pub(crate) job_uid: Option<String>,
    #[serde(default)]
    pub(crate) job_run_uid: Option<String>,
    #[serde(default, deserialize_with = "api::flex::opt_id")]
    pub(crate) job_run_id: Option<Id>,
}

#[utoipa::path(
    get,
    path = "/upload/jobrun",
    tag = "job runs",
    summary = "Find a job run by its CI ids",
    params(JobRunQuery),
    responses((status = 200, description = "OK", body = api::ExternalRunResponse)),
)]
pub(crate) async fn find_job_run(
    State(state): State<AppState>,
    scope: Scope,
    Query(q): Query<JobRunQuery>,
) -> ServerResult<Json<api::ExternalRunResponse>> {
    if let Some(id) = q.job_run_id {
        return Ok(Json(scope.job_run(&state.db, id).await?.to_external()));
    }
    let project = scope.project_or_default(q.project_id);
    scope.project(&state.db, project).await?;
    let (Some(job), Some(run)) = (q.job_uid, q.job_run_uid) else {
        return Err(ServerError::bad(
            "query needs `jobRunId`, or `jobUid` and `jobRunUid`",
        ));
    };
    let r = crate::db::job_runs::find_job_run(&state.db, project, &job, &run)
        .await?
        .ok_or_else(|| {
            ServerError::NotFound(format!("job run {run:?} of job {job:?} not found"))
        })?;
    Ok(Json(r.to_external()))
}

#[utoipa::path(
    get,
    path = "/jobrun/{id}",
    tag = "job runs",
    summary = "A job run",
    params(("id" = i64, Path, description = "job run id")),
    responses((status = 200, description = "OK", body = api::JobRunDto)),
)]
pub(crate) async fn get_job_run(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::JobRunDto>> {
    let run = scope.job_run(&state.db, id).await?;
    let mut dto = run.to_dto(&state.public_url);
    dto.planned = db::server_runs::job_run_planned(&state.db, run.id).await?;
    Ok(Json(dto))
}

#[utoipa::path(
    get,
    path = "/jobrun/{id}/plan",
    tag = "job runs",
    summary = "The tests a server-led job run was asked to run",
    params(("id" = i64, Path, description = "job run id")),
    responses((status = 200, description = "Allure test plan entries", body = Vec<serde_json::Value>)),
)]
pub(crate) async fn job_run_plan(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<Vec<Value>>> {
    let run = scope.job_run(&state.db, id).await?;
    // Server-led job runs have a stored plan; CI-led ones none (everything runs).
    Ok(Json(db::job_runs::plan_items(&state.db, run.id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobQuery {
    #[serde(default, deserialize_with = "api::flex::opt_id")]
    pub(crate) project_id: Option<Id>,
    #[serde(default)]
    pub(crate) external_id: Option<String>,
    #[serde(default)]
    pub(crate) page: Option<i64>,
    #[serde(default)]
    pub(crate) size: Option<i64>,
}

/// `GET /job` answers one job (`externalId` given) or a page of them.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum JobLookup {
    One(api::JobDto),
    Page(api::Page<api::JobDto>),
}

#[utoipa::path(
    get,
    path = "/job",
    tag = "jobs",
    summary = "One job by external id, or a page of jobs",
    params(JobQuery),
    responses((status = 200, description = "a job when `externalId` is given, else a page of jobs", body = JobLookup)),
)]
pub(crate) async fn find_job(
    State(state): State<AppState>,
    scope: Scope,
    Query(q): Query<JobQuery>,
) -> ServerResult<Json<JobLookup>> {
    let project = scope.project_or_default(q.project_id);
    scope.project(&state.db, project).await?;
    match q.external_id {
        Some(ext) => {
            let job = crate::db::job_runs::find_job(&state.db, project, &ext)
                .await?
                .ok_or_else(|| ServerError::NotFound(format!("job {ext:?} not found")))?;
            Ok(Json(JobLookup::One(job.to_dto())))
        }
        None => {
            let (page, size) = page_size(q.page, q.size);
            let jobs = crate::db::job_runs::list_jobs(&state.db, project).await?;
            let total = jobs.len() as i64;
            let content: Vec<_> = jobs
                .iter()
                .skip((page * size) as usize)
                .take(size as usize)
                .map(crate::db::job_runs::JobRow::to_dto)
                .collect();
            Ok(Json(JobLookup::Page(api::Page::new(
                content, total, page, size,
            ))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_lookup_serialises_as_the_job_or_the_page_itself() {
        let job = api::JobDto {
            id: 2,
            external_id: "o/r_wf".into(),
            name: "wf".into(),
            url: None,
            kind: None,
            project_id: 1,
            parameters: vec![],
        };
        let one = serde_json::to_value(JobLookup::One(job.clone())).unwrap();
        assert_eq!(one, serde_json::to_value(&job).unwrap());
        let page = api::Page::new(vec![job], 1, 0, 20);
        let expected = serde_json::to_value(&page).unwrap();
        assert_eq!(
            serde_json::to_value(JobLookup::Page(page)).unwrap(),
            expected
        );
    }
}
