//! Jobs and job runs: create-or-join (`start_run`, one transaction, unique keys),
//! stop, lookups by id and uid.

use onelaunch_api::{self as api, Id};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::*;
use crate::error::{ServerError, ServerResult};

#[derive(Debug, Clone)]
pub(crate) struct JobRunRow {
    pub id: Id,
    pub job_id: Id,
    pub launch_id: Id,
    pub project_id: Id,
    pub uid: String,
    pub name: String,
    pub url: Option<String>,
    pub stage: String,
    pub status: String,
    pub error_message: Option<String>,
    pub parameters: Vec<api::ParameterDto>,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub job_uid: String,
    pub job_name: String,
    pub job_url: Option<String>,
    pub ci_type: Option<String>,
    pub result_count: i64,
    /// Created by an upload (done when its sessions are closed), not by
    /// `job-run start` or a server-led run (done when stopped).
    pub implicit: bool,
}

pub(crate) const JOB_RUN_SELECT: &str = "SELECT r.id AS id, r.job_id AS job_id, r.launch_id AS launch_id, \
     r.project_id AS project_id, r.uid AS uid, r.name AS name, r.url AS url, r.stage AS stage, \
     r.status AS status, r.error_message AS error_message, r.parameters AS parameters, \
     r.created_ms AS created_ms, r.modified_ms AS modified_ms, j.uid AS job_uid, j.name AS job_name, \
     j.url AS job_url, j.ci_type AS ci_type, r.implicit AS implicit, \
     (SELECT COUNT(*) FROM test_results t WHERE t.job_run_id = r.id) AS result_count \
     FROM job_runs r JOIN jobs j ON j.id = r.job_id";

pub(crate) fn job_run_from(r: &AnyRow) -> ServerResult<JobRunRow> {
    Ok(JobRunRow {
        id: get_i64(r, "id")?,
        job_id: get_i64(r, "job_id")?,
        launch_id: get_i64(r, "launch_id")?,
        project_id: get_i64(r, "project_id")?,
        uid: get_str(r, "uid")?,
        name: get_str(r, "name")?,
        url: opt_str(r, "url"),
        stage: get_str(r, "stage")?,
        status: get_str(r, "status")?,
        error_message: opt_str(r, "error_message"),
        parameters: serde_json::from_str(&get_str(r, "parameters")?).unwrap_or_default(),
        created_ms: get_i64(r, "created_ms")?,
        modified_ms: get_i64(r, "modified_ms")?,
        job_uid: get_str(r, "job_uid")?,
        job_name: get_str(r, "job_name")?,
        job_url: opt_str(r, "job_url"),
        ci_type: opt_str(r, "ci_type"),
        result_count: get_i64(r, "result_count")?,
        implicit: get_i64(r, "implicit")? != 0,
    })
}

impl JobRunRow {
    pub(crate) fn to_dto(&self, public_url: &str) -> api::JobRunDto {
        api::JobRunDto {
            id: self.id,
            external_id: self.uid.clone(),
            name: self.name.clone(),
            url: self.url.clone(),
            launch_id: self.launch_id,
            project_id: self.project_id,
            job: api::JobSummary {
                id: self.job_id,
                name: self.job_name.clone(),
                kind: self.ci_type.clone(),
                url: self.job_url.clone(),
            },
            stage: self.stage.clone(),
            status: self.status.clone(),
            error_message: self.error_message.clone(),
            parameters: self.parameters.clone(),
            created_date: self.created_ms,
            last_modified_date: self.modified_ms,
            result_count: self.result_count,
            web_url: Some(format!("{public_url}/jobrun/{}", self.id)),
            planned: None,
        }
    }

    pub(crate) fn to_external(&self) -> api::ExternalRunResponse {
        api::ExternalRunResponse {
            job_id: self.job_id,
            job_run_id: self.id,
            launch_id: self.launch_id,
            project_id: self.project_id,
            ..Default::default()
        }
    }
}

pub(crate) async fn get_job_run(db: &Db, id: Id) -> ServerResult<Option<JobRunRow>> {
    let r = sqlx::query(&format!("{JOB_RUN_SELECT} WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(&db.read)
        .await?;
    r.as_ref().map(job_run_from).transpose()
}

pub(crate) async fn find_job_run(
    db: &Db,
    project_id: Id,
    job_uid: &str,
    job_run_uid: &str,
) -> ServerResult<Option<JobRunRow>> {
    let r = sqlx::query(&format!(
        "{JOB_RUN_SELECT} WHERE j.project_id = $1 AND j.uid = $2 AND r.uid = $3"
    ))
    .bind(project_id)
    .bind(job_uid)
    .bind(job_run_uid)
    .fetch_optional(&db.read)
    .await?;
    r.as_ref().map(job_run_from).transpose()
}

pub(crate) async fn launch_job_runs(db: &Db, launch_id: Id) -> ServerResult<Vec<JobRunRow>> {
    let rows = sqlx::query(&format!(
        "{JOB_RUN_SELECT} WHERE r.launch_id = $1 ORDER BY r.id"
    ))
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(job_run_from).collect()
}

#[derive(Debug, Clone)]
pub(crate) struct JobRow {
    pub id: Id,
    pub project_id: Id,
    pub uid: String,
    pub name: String,
    pub url: Option<String>,
    pub ci_type: Option<String>,
    pub parameters: Vec<api::ParameterDto>,
}

impl JobRow {
    pub(crate) fn to_dto(&self) -> api::JobDto {
        api::JobDto {
            id: self.id,
            external_id: self.uid.clone(),
            name: self.name.clone(),
            url: self.url.clone(),
            kind: self.ci_type.clone(),
            project_id: self.project_id,
            parameters: self.parameters.clone(),
        }
    }
}

pub(crate) fn job_from(r: &AnyRow) -> ServerResult<JobRow> {
    Ok(JobRow {
        id: get_i64(r, "id")?,
        project_id: get_i64(r, "project_id")?,
        uid: get_str(r, "uid")?,
        name: get_str(r, "name")?,
        url: opt_str(r, "url"),
        ci_type: opt_str(r, "ci_type"),
        parameters: serde_json::from_str(&get_str(r, "parameters")?).unwrap_or_default(),
    })
}

pub(crate) async fn find_job(db: &Db, project_id: Id, uid: &str) -> ServerResult<Option<JobRow>> {
    let r = sqlx::query(
        "SELECT id, project_id, uid, name, url, ci_type, parameters FROM jobs WHERE project_id = $1 AND uid = $2",
    )
    .bind(project_id)
    .bind(uid)
    .fetch_optional(&db.read)
    .await?;
    r.as_ref().map(job_from).transpose()
}

pub(crate) async fn list_jobs(db: &Db, project_id: Id) -> ServerResult<Vec<JobRow>> {
    let rows = sqlx::query(
        "SELECT id, project_id, uid, name, url, ci_type, parameters FROM jobs WHERE project_id = $1 ORDER BY id",
    )
    .bind(project_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(job_from).collect()
}

/// Outcome of `upload/start`.
pub(crate) enum StartOutcome {
    Ok(api::ExternalRunResponse),
    /// The launch to join is closed.
    LaunchClosed(Id),
}

/// Create-or-join, atomic under concurrency: one transaction upserts the job,
/// looks for the job run, and only if there is none creates the launch (unless
/// one was given) and the job run. If a concurrent request inserted the same
/// job run first, the unique constraint makes our insert a no-op; we roll back
/// (so no orphan launch remains) and join theirs.
pub(crate) async fn start_run(db: &Db, req: &api::ExternalRunStart) -> ServerResult<StartOutcome> {
    let job_uid = req.job.uid.trim();
    let run_uid = req.job_run.uid.trim();
    if job_uid.is_empty() {
        return Err(ServerError::bad("field `job.uid` must not be empty"));
    }
    if run_uid.is_empty() {
        return Err(ServerError::bad("field `jobRun.uid` must not be empty"));
    }
    let ci_type = req
        .ci
        .as_ref()
        .and_then(|c| c.kind.clone().or_else(|| c.name.clone()));
    let job_name = clip(
        req.job
            .name
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(job_uid),
        MAX_NAME,
    );
    let run_name = clip(
        req.job_run
            .name
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(run_uid),
        MAX_NAME,
    );
    for _attempt in 0..5 {
        let now = now_ms();
        let mut tx = db.write.begin().await?;
        sqlx::query(
            "INSERT INTO jobs (project_id, uid, name, url, ci_type, parameters, created_ms, modified_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (project_id, uid) DO NOTHING",
        )
        .bind(req.project_id)
        .bind(clip(job_uid, 1024))
        .bind(&job_name)
        .bind(clip_opt(&req.job.url, 4096))
        .bind(ci_type.clone())
        .bind(serde_json::to_string(&req.job.parameters).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let job_id: i64 = sqlx::query("SELECT id FROM jobs WHERE project_id = $1 AND uid = $2")
            .bind(req.project_id)
            .bind(clip(job_uid, 1024))
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
        if req.job.url.is_some() || !req.job.parameters.is_empty() {
            sqlx::query(
                "UPDATE jobs SET name = $1, url = COALESCE($2, url), ci_type = COALESCE($3, ci_type), \
                 parameters = CASE WHEN $4 = '[]' THEN parameters ELSE $4 END, modified_ms = $5 WHERE id = $6",
            )
            .bind(&job_name)
            .bind(clip_opt(&req.job.url, 4096))
            .bind(ci_type.clone())
            .bind(serde_json::to_string(&req.job.parameters).unwrap_or_else(|_| "[]".into()))
            .bind(now)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        }
        let existing =
            sqlx::query("SELECT id, launch_id FROM job_runs WHERE job_id = $1 AND uid = $2")
                .bind(job_id)
                .bind(clip(run_uid, 1024))
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(r) = existing {
            let id: i64 = r.try_get("id")?;
            let launch_id: i64 = r.try_get("launch_id")?;
            if !req.implicit {
                // Joined by `job-run start`: from now on it is done when stopped.
                sqlx::query("UPDATE job_runs SET implicit = 0 WHERE id = $1 AND implicit <> 0")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "UPDATE job_runs SET stage = $1, modified_ms = $2 WHERE id = $3 AND stage <> $1",
            )
            .bind(api::stage::IN_PROGRESS)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(StartOutcome::Ok(api::ExternalRunResponse {
                job_id,
                job_run_id: id,
                launch_id,
                project_id: req.project_id,
                ..Default::default()
            }));
        }
        let launch_ref = req.launch.clone().unwrap_or_default();
        let launch_id = match launch_ref.id {
            Some(lid) => {
                let r = sqlx::query("SELECT project_id, closed FROM launches WHERE id = $1")
                    .bind(lid)
                    .fetch_optional(&mut *tx)
                    .await?;
                match r {
                    Some(r) if r.try_get::<i64, _>("project_id")? == req.project_id => {
                        if r.try_get::<i64, _>("closed")? != 0 {
                            tx.rollback().await?;
                            return Ok(StartOutcome::LaunchClosed(lid));
                        }
                        lid
                    }
                    _ => return Err(ServerError::not_found("launch", lid)),
                }
            }
            None => {
                let create = api::LaunchCreate {
                    name: launch_ref
                        .name
                        .clone()
                        .filter(|s| !s.trim().is_empty())
                        .unwrap_or_else(|| format!("{job_name} {run_name}")),
                    project_id: req.project_id,
                    autoclose: launch_ref.autoclose.unwrap_or(false),
                    external: true,
                    tags: launch_ref.tags.clone(),
                    links: vec![],
                    issues: vec![],
                };
                super::launches::insert_launch(&mut *tx, req.project_id, &create).await?
            }
        };
        let inserted = sqlx::query(
            "INSERT INTO job_runs (job_id, launch_id, project_id, uid, name, url, stage, status, parameters, created_ms, modified_ms, implicit) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'unknown', $8, $9, $9, $10) ON CONFLICT (job_id, uid) DO NOTHING RETURNING id",
        )
        .bind(job_id)
        .bind(launch_id)
        .bind(req.project_id)
        .bind(clip(run_uid, 1024))
        .bind(&run_name)
        .bind(clip_opt(&req.job_run.url, 4096))
        .bind(api::stage::IN_PROGRESS)
        .bind(serde_json::to_string(&req.job_run.parameters).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .bind(i64::from(req.implicit))
        .fetch_optional(&mut *tx)
        .await?;
        match inserted {
            Some(r) => {
                let id: i64 = r.try_get("id")?;
                tx.commit().await?;
                return Ok(StartOutcome::Ok(api::ExternalRunResponse {
                    job_id,
                    job_run_id: id,
                    launch_id,
                    project_id: req.project_id,
                    ..Default::default()
                }));
            }
            None => {
                // Lost a race: discard our launch and join the winner's job run.
                tx.rollback().await?;
                continue;
            }
        }
    }
    Err(ServerError::Conflict(
        "could not create or join the job run under contention; retry".into(),
    ))
}

/// Marks a job run as started (used when a client joins by `jobRun.id`).
pub(crate) async fn touch_job_run(db: &Db, id: Id) -> ServerResult<()> {
    sqlx::query(
        "UPDATE job_runs SET stage = $1, modified_ms = $2 WHERE id = $3 AND stage IN ($4, $1)",
    )
    .bind(api::stage::IN_PROGRESS)
    .bind(now_ms())
    .bind(id)
    .bind(api::stage::SCHEDULED)
    .execute(&db.write)
    .await?;
    Ok(())
}

/// Finishes a job run. Without an explicit status it is derived from its
/// results ([`derived_status`]) and stays derived: results that arrive later
/// (a slow shard, a late upload) derive it again.
pub(crate) async fn stop_job_run(
    db: &Db,
    run: &JobRunRow,
    status: Option<&str>,
) -> ServerResult<()> {
    let given = match status.map(|s| s.trim().to_ascii_lowercase()) {
        Some(s) if ["passed", "failed", "cancelled", "unknown"].contains(&s.as_str()) => Some(s),
        Some(s) => {
            return Err(ServerError::bad(format!(
                "field `status`: expected passed, failed, cancelled or unknown, got {s:?}"
            )))
        }
        None => None,
    };
    let mut tx = db.write.begin().await?;
    let derived = given.is_none();
    let status = match given {
        // A job run that did not report every planned test did not pass: its
        // status says so (`broken`), whatever it says of itself.
        Some(s) if s == "passed" && unreported_items_in(&mut tx, run.id).await? > 0 => {
            "broken".to_string()
        }
        Some(s) => s,
        None => derived_status(&mut tx, run.id).await?.to_string(),
    };
    sqlx::query(
        "UPDATE job_runs SET stage = $1, status = $2, status_derived = $3, modified_ms = $4 WHERE id = $5",
    )
    .bind(api::stage::FINISHED)
    .bind(status)
    .bind(derived as i64)
    .bind(now_ms())
    .bind(run.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The latest attempt of each test within its own job run (a job run's status
/// is what its own attempts say, even when a later job run re-ran them).
///
/// The attempts are looked up through the launch's key index
/// (`test_results_key`: a job run's results are all in its launch), and the
/// job run is checked on the few attempts of that test there: migration 0027
/// dropped the (job run, test key) index, whose random keys every upload
/// rewrote. The unary `+` (a no-op on both engines) keeps SQLite from looking
/// `u` up by job run instead, which reads the whole job run for each result.
pub(crate) const LATEST_IN_RUN: &str =
    "NOT EXISTS (SELECT 1 FROM test_results u WHERE u.launch_id = t.launch_id \
     AND u.test_key = t.test_key AND +u.job_run_id = t.job_run_id \
     AND (COALESCE(u.start_ms, 0) > COALESCE(t.start_ms, 0) \
     OR (COALESCE(u.start_ms, 0) = COALESCE(t.start_ms, 0) AND u.id > t.id)))";

/// The status a job run's results give it: `failed` when a latest attempt
/// failed or broke, `unknown` when it reported nothing, `broken` when planned
/// tests are missing, else `passed`.
///
/// Only the job run's failed and broken results are checked for being the
/// latest attempt of their test, and the first that is answers: each check is
/// a search of the launch's key index, and checking every result (counting
/// the latest attempts) took 0.2–0.35 s for a job run of 100,000 results, on
/// the writer, at the end of every upload (docs/ingest-profile.md, "The end
/// of an upload"). A job run that has results has latest attempts, so
/// "reported nothing" is "has no result".
pub(crate) async fn derived_status(
    conn: &mut AnyConnection,
    job_run_id: Id,
) -> ServerResult<&'static str> {
    let row = sqlx::query(&format!(
        "SELECT CAST(CASE WHEN EXISTS (SELECT 1 FROM test_results t WHERE t.job_run_id = $1 \
         AND t.status IN ('failed', 'broken') AND {LATEST_IN_RUN}) THEN 1 ELSE 0 END AS BIGINT) AS bad, \
         CAST(CASE WHEN EXISTS (SELECT 1 FROM test_results t WHERE t.job_run_id = $1) \
         THEN 1 ELSE 0 END AS BIGINT) AS reported"
    ))
    .bind(job_run_id)
    .fetch_one(&mut *conn)
    .await?;
    let (bad, reported) = (get_i64(&row, "bad")?, get_i64(&row, "reported")?);
    Ok(if bad > 0 {
        "failed"
    } else if unreported_items_in(conn, job_run_id).await? > 0 {
        "broken"
    } else if reported == 0 {
        "unknown"
    } else {
        "passed"
    })
}

/// Derives again the status of a finished job run whose status was derived
/// (not given by `job-run stop --status`), after new results arrived in it.
pub(crate) async fn rederive_finished(
    conn: &mut AnyConnection,
    job_run_id: Id,
) -> ServerResult<()> {
    let row = sqlx::query("SELECT stage, status_derived FROM job_runs WHERE id = $1")
        .bind(job_run_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(()) };
    if get_str(&row, "stage")? != api::stage::FINISHED || get_i64(&row, "status_derived")? == 0 {
        return Ok(());
    }
    let status = derived_status(conn, job_run_id).await?;
    sqlx::query("UPDATE job_runs SET status = $1, modified_ms = $2 WHERE id = $3 AND status <> $1")
        .bind(status)
        .bind(now_ms())
        .bind(job_run_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(crate) async fn get_job(db: &Db, id: Id) -> ServerResult<Option<crate::db::job_runs::JobRow>> {
    let r = sqlx::query(
        "SELECT id, project_id, uid, name, url, ci_type, parameters FROM jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.read)
    .await?;
    Ok(match r {
        Some(r) => Some(crate::db::job_runs::JobRow {
            id: get_i64(&r, "id")?,
            project_id: get_i64(&r, "project_id")?,
            uid: get_str(&r, "uid")?,
            name: get_str(&r, "name")?,
            url: opt_str(&r, "url"),
            ci_type: opt_str(&r, "ci_type"),
            parameters: serde_json::from_str(&get_str(&r, "parameters")?).unwrap_or_default(),
        }),
        None => None,
    })
}

/// Records a failed trigger (or a failed `command`) on a job run. A job run
/// that already finished keeps its stage and only gets the message.
pub(crate) async fn mark_run_failure(
    db: &Db,
    job_run_id: Id,
    message: &str,
    keep_finished: bool,
) -> ServerResult<()> {
    let message = clip(message, 4096);
    if keep_finished {
        sqlx::query(
            "UPDATE job_runs SET error_message = $1, modified_ms = $2, \
             stage = CASE WHEN stage = $3 THEN stage ELSE $4 END WHERE id = $5",
        )
        .bind(message)
        .bind(now_ms())
        .bind(api::stage::FINISHED)
        .bind(api::stage::RUN_FAILURE)
        .bind(job_run_id)
        .execute(&db.write)
        .await?;
    } else {
        sqlx::query(
            "UPDATE job_runs SET stage = $1, error_message = $2, modified_ms = $3 WHERE id = $4",
        )
        .bind(api::stage::RUN_FAILURE)
        .bind(message)
        .bind(now_ms())
        .bind(job_run_id)
        .execute(&db.write)
        .await?;
    }
    Ok(())
}

/// A job run receives results: a `scheduled` one moves to `in_progress`
/// (one statement; nothing to do for a job run already past it).
pub(crate) async fn start_receiving(
    conn: &mut AnyConnection,
    run: Id,
    now: i64,
) -> ServerResult<()> {
    sqlx::query("UPDATE job_runs SET stage = $1, modified_ms = $2 WHERE id = $3 AND stage = $4")
        .bind(api::stage::IN_PROGRESS)
        .bind(now)
        .bind(run)
        .bind(api::stage::SCHEDULED)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Planned tests of a job run no result was reported for (read from the
/// writer: the results just ingested count).
async fn unreported_items_in(conn: &mut AnyConnection, job_run_id: Id) -> ServerResult<i64> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM job_run_plan_items WHERE job_run_id = $1 AND reported = 0",
    )
    .bind(job_run_id)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?)
}

/// `[{id?, selector}]` of a server-led job run's test plan; empty for CI-led
/// job runs (everything runs). An entry carries `id` only when its test case
/// has a numeric `ALLURE_ID` of its own: adapters also run every test whose
/// `ALLURE_ID` equals a planned `id`, so onelaunch's internal case id there
/// would select unrelated tests.
pub(crate) async fn plan_items(db: &Db, job_run_id: Id) -> ServerResult<Vec<Value>> {
    let rows = sqlx::query(
        "SELECT i.selector AS selector, c.allure_id AS allure_id FROM job_run_plan_items i \
         JOIN test_cases c ON c.id = i.test_case_id WHERE i.job_run_id = $1 ORDER BY i.id",
    )
    .bind(job_run_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            let selector = get_str(r, "selector")?;
            Ok(
                match opt_str(r, "allure_id").and_then(|a| a.trim().parse::<i64>().ok()) {
                    Some(id) => serde_json::json!({ "id": id, "selector": selector }),
                    None => serde_json::json!({ "selector": selector }),
                },
            )
        })
        .collect()
}
