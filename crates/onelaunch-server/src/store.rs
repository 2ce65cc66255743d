//! Storage operations. Every invariant lives here, expressed with unique
//! constraints and transactions so it holds whichever replica runs the code:
//! a job is unique by (project, uid); a job run by (job, uid) and belongs to one
//! launch; a result by (launch, uuid). Results sharing a test key (historyId,
//! else uuid) are attempts of one test; the latest attempt decides.

use onelaunch_api::{self as api, Id};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::db::{get_i64, get_str, now_ms, opt_i64, opt_str, Db};
use crate::error::{ServerError, ServerResult};

/// Bounds on text fields; longer values are cut, never refused.
pub const MAX_NAME: usize = 1_000;
pub const MAX_TEXT: usize = 256 * 1024;

pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn clip_opt(s: &Option<String>, max: usize) -> Option<String> {
    s.as_deref().map(|s| clip(s, max))
}

// ---------------------------------------------------------------- bootstrap

/// Creates project 1 ("Default") if no project exists, ensures the init token
/// exists as an admin token, and, when no token exists at all, creates one and
/// returns it (to be shown once).
pub async fn bootstrap(db: &Db, init_token: Option<&str>) -> ServerResult<Option<String>> {
    let now = now_ms();
    let projects: i64 = sqlx::query("SELECT COUNT(*) AS n FROM projects")
        .fetch_one(&db.write)
        .await?
        .try_get("n")?;
    if projects == 0 {
        sqlx::query("INSERT INTO projects (name, created_ms) VALUES ($1, $2)")
            .bind("Default")
            .bind(now)
            .execute(&db.write)
            .await?;
    }
    if let Some(t) = init_token {
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, project_id, name, created_ms) VALUES ($1, NULL, $2, $3) \
             ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(crate::auth::hash_token(t))
        .bind("init")
        .bind(now)
        .execute(&db.write)
        .await?;
        return Ok(None);
    }
    let tokens: i64 = sqlx::query("SELECT COUNT(*) AS n FROM api_tokens")
        .fetch_one(&db.write)
        .await?
        .try_get("n")?;
    if tokens > 0 {
        return Ok(None);
    }
    let token = crate::auth::new_token("ol_");
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, project_id, name, created_ms) VALUES ($1, NULL, $2, $3)",
    )
    .bind(crate::auth::hash_token(&token))
    .bind("admin")
    .bind(now)
    .execute(&db.write)
    .await?;
    Ok(Some(token))
}

// ---------------------------------------------------------------- projects and tokens

pub async fn create_project(db: &Db, name: &str) -> ServerResult<api::ProjectDto> {
    let name = clip(name.trim(), MAX_NAME);
    if name.is_empty() {
        return Err(ServerError::bad("field `name` must not be empty"));
    }
    let row = sqlx::query("INSERT INTO projects (name, created_ms) VALUES ($1, $2) RETURNING id")
        .bind(&name)
        .bind(now_ms())
        .fetch_one(&db.write)
        .await?;
    Ok(api::ProjectDto {
        id: row.try_get("id")?,
        name,
    })
}

pub async fn project_exists(db: &Db, id: Id) -> ServerResult<bool> {
    Ok(sqlx::query("SELECT id FROM projects WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.read)
        .await?
        .is_some())
}

pub async fn list_projects(db: &Db, only: Option<Id>) -> ServerResult<Vec<api::ProjectDto>> {
    let rows = sqlx::query("SELECT id, name FROM projects ORDER BY id")
        .fetch_all(&db.read)
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let id = get_i64(&r, "id")?;
        if only.is_none_or(|p| p == id) {
            out.push(api::ProjectDto {
                id,
                name: get_str(&r, "name")?,
            });
        }
    }
    Ok(out)
}

pub async fn create_project_token(db: &Db, project_id: Id) -> ServerResult<String> {
    let token = crate::auth::new_token("olp_");
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, project_id, name, created_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(crate::auth::hash_token(&token))
    .bind(project_id)
    .bind(format!("project {project_id}"))
    .bind(now_ms())
    .execute(&db.write)
    .await?;
    Ok(token)
}

pub async fn create_access_token(db: &Db, api_token_id: Id) -> ServerResult<String> {
    let token = crate::auth::new_token("ola_");
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, api_token_id, expires_ms) VALUES ($1, $2, $3)",
    )
    .bind(crate::auth::hash_token(&token))
    .bind(api_token_id)
    .bind(now_ms() + crate::auth::ACCESS_TOKEN_SECONDS * 1000)
    .execute(&db.write)
    .await?;
    Ok(token)
}

// ---------------------------------------------------------------- launches

#[derive(Debug, Clone)]
pub struct LaunchRow {
    pub id: Id,
    pub project_id: Id,
    pub name: String,
    pub closed: bool,
    pub external: bool,
    pub autoclose: bool,
    pub tags: Vec<String>,
    pub links: Vec<api::LinkDto>,
    pub issues: Vec<Value>,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub expected_job_runs: Option<i64>,
}

pub(crate) const LAUNCH_COLS: &str = "id, project_id, name, closed, external, autoclose, tags, links, issues, created_ms, modified_ms, expected_job_runs";

pub(crate) fn launch_from(r: &AnyRow) -> ServerResult<LaunchRow> {
    let json = |c: &str| get_str(r, c).unwrap_or_else(|_| "[]".into());
    Ok(LaunchRow {
        id: get_i64(r, "id")?,
        project_id: get_i64(r, "project_id")?,
        name: get_str(r, "name")?,
        closed: get_i64(r, "closed")? != 0,
        external: get_i64(r, "external")? != 0,
        autoclose: get_i64(r, "autoclose")? != 0,
        tags: serde_json::from_str(&json("tags")).unwrap_or_default(),
        links: serde_json::from_str(&json("links")).unwrap_or_default(),
        issues: serde_json::from_str(&json("issues")).unwrap_or_default(),
        created_ms: get_i64(r, "created_ms")?,
        modified_ms: get_i64(r, "modified_ms")?,
        expected_job_runs: opt_i64(r, "expected_job_runs"),
    })
}

impl LaunchRow {
    pub fn to_dto(&self, public_url: &str) -> api::LaunchDto {
        api::LaunchDto {
            id: self.id,
            name: self.name.clone(),
            closed: self.closed,
            external: self.external,
            autoclose: self.autoclose,
            project_id: self.project_id,
            tags: self
                .tags
                .iter()
                .map(|t| api::TagDto { name: t.clone() })
                .collect(),
            links: self.links.clone(),
            issues: self.issues.clone(),
            created_date: self.created_ms,
            last_modified_date: self.modified_ms,
            url: Some(format!("{public_url}/launch/{}", self.id)),
            expected_job_runs: self.expected_job_runs,
            participants: None,
        }
    }
}

/// Inserts a launch inside the given connection/transaction.
async fn insert_launch<'c, E>(exec: E, project_id: Id, req: &api::LaunchCreate) -> ServerResult<Id>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let name = clip(req.name.trim(), MAX_NAME);
    if name.is_empty() {
        return Err(ServerError::bad("field `name` must not be empty"));
    }
    let tags: Vec<String> = req.tags.iter().map(|t| clip(t.trim(), 255)).collect();
    let now = now_ms();
    let row = sqlx::query(
        "INSERT INTO launches (project_id, name, closed, external, autoclose, tags, links, issues, created_ms, modified_ms) \
         VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
    )
    .bind(project_id)
    .bind(name)
    .bind(req.external as i64)
    .bind(req.autoclose as i64)
    .bind(serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&req.links).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&req.issues).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .fetch_one(exec)
    .await?;
    Ok(row.try_get("id")?)
}

pub async fn create_launch(db: &Db, req: &api::LaunchCreate) -> ServerResult<LaunchRow> {
    let id = insert_launch(&db.write, req.project_id, req).await?;
    get_launch_w(db, id).await
}

async fn get_launch_w(db: &Db, id: Id) -> ServerResult<LaunchRow> {
    let r = sqlx::query(&format!("SELECT {LAUNCH_COLS} FROM launches WHERE id = $1"))
        .bind(id)
        .fetch_one(&db.write)
        .await?;
    launch_from(&r)
}

pub async fn get_launch(db: &Db, id: Id) -> ServerResult<Option<LaunchRow>> {
    let r = sqlx::query(&format!("SELECT {LAUNCH_COLS} FROM launches WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.read)
        .await?;
    r.as_ref().map(launch_from).transpose()
}

pub async fn list_launches(
    db: &Db,
    project_id: Id,
    search: Option<&str>,
    page: i64,
    size: i64,
) -> ServerResult<(Vec<LaunchRow>, i64)> {
    let pattern = format!("%{}%", search.unwrap_or("").to_lowercase());
    let total: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM launches WHERE project_id = $1 AND LOWER(name) LIKE $2",
    )
    .bind(project_id)
    .bind(&pattern)
    .fetch_one(&db.read)
    .await?
    .try_get("n")?;
    let rows = sqlx::query(&format!(
        "SELECT {LAUNCH_COLS} FROM launches WHERE project_id = $1 AND LOWER(name) LIKE $2 \
         ORDER BY id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(project_id)
    .bind(&pattern)
    .bind(size)
    .bind(page * size)
    .fetch_all(&db.read)
    .await?;
    Ok((
        rows.iter().map(launch_from).collect::<Result<_, _>>()?,
        total,
    ))
}

/// Closing or reopening is idempotent: closing a closed launch changes nothing.
pub async fn set_launch_closed(db: &Db, id: Id, closed: bool) -> ServerResult<()> {
    let now = now_ms();
    sqlx::query(
        "UPDATE launches SET closed = $1, modified_ms = $2, closed_ms = $3 WHERE id = $4 AND closed <> $1",
    )
    .bind(closed as i64)
    .bind(now)
    .bind(if closed { Some(now) } else { None })
    .bind(id)
    .execute(&db.write)
    .await?;
    Ok(())
}

/// The latest attempt of each test, in SQL: no later attempt with the same key.
pub const LATEST: &str =
    "NOT EXISTS (SELECT 1 FROM test_results u WHERE u.launch_id = t.launch_id \
     AND u.test_key = t.test_key AND (COALESCE(u.start_ms, 0) > COALESCE(t.start_ms, 0) \
     OR (COALESCE(u.start_ms, 0) = COALESCE(t.start_ms, 0) AND u.id > t.id)))";

/// Counts by status, each test counted once by its latest attempt.
pub async fn launch_statistic(db: &Db, launch_id: Id) -> ServerResult<Vec<api::StatisticItem>> {
    let rows = sqlx::query(&format!(
        "SELECT t.status AS status, COUNT(*) AS n FROM test_results t \
         WHERE t.launch_id = $1 AND {LATEST} GROUP BY t.status"
    ))
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?;
    statistic_items(&rows)
}

/// `(status, n)` rows as statistic items in the order statuses are shown.
pub(crate) fn statistic_items(rows: &[AnyRow]) -> ServerResult<Vec<api::StatisticItem>> {
    let mut out = Vec::new();
    for s in api::STATUSES {
        for r in rows {
            if get_str(r, "status")? == s {
                out.push(api::StatisticItem {
                    status: s.to_string(),
                    count: get_i64(r, "n")?,
                });
            }
        }
    }
    Ok(out)
}

pub async fn delete_launch(db: &Db, id: Id) -> ServerResult<()> {
    let mut tx = db.write.begin().await?;
    let sub = "SELECT id FROM test_results WHERE launch_id = $1";
    for sql in [
        format!("DELETE FROM attachments WHERE test_result_id IN ({sub})"),
        format!("DELETE FROM fixtures WHERE test_result_id IN ({sub})"),
        "DELETE FROM test_results WHERE launch_id = $1".into(),
        "DELETE FROM session_files WHERE session_id IN (SELECT id FROM sessions WHERE launch_id = $1)"
            .into(),
        "DELETE FROM sessions WHERE launch_id = $1".into(),
        "DELETE FROM job_runs WHERE launch_id = $1".into(),
        "DELETE FROM launch_refs WHERE launch_id = $1".into(),
        "DELETE FROM launches WHERE id = $1".into(),
    ] {
        sqlx::query(&sql).bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Named envs / categories for the bulk endpoints: create-or-get by external id.
pub async fn launch_refs(
    db: &Db,
    launch_id: Id,
    kind: &str,
    items: &[Value],
) -> ServerResult<Vec<api::BulkRef>> {
    let mut out = Vec::new();
    let mut tx = db.write.begin().await?;
    for item in items {
        let ext = item
            .get("externalId")
            .and_then(Value::as_str)
            .map(|s| clip(s, 255));
        let Some(ext) = ext else { continue };
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .map(|s| clip(s, MAX_NAME))
            .unwrap_or_else(|| ext.clone());
        sqlx::query(
            "INSERT INTO launch_refs (launch_id, kind, external_id, name) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (launch_id, kind, external_id) DO NOTHING",
        )
        .bind(launch_id)
        .bind(kind)
        .bind(&ext)
        .bind(&name)
        .execute(&mut *tx)
        .await?;
        let id: i64 = sqlx::query(
            "SELECT id FROM launch_refs WHERE launch_id = $1 AND kind = $2 AND external_id = $3",
        )
        .bind(launch_id)
        .bind(kind)
        .bind(&ext)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        out.push(api::BulkRef {
            id,
            external_id: ext,
        });
    }
    tx.commit().await?;
    Ok(out)
}

// ---------------------------------------------------------------- jobs and job runs

#[derive(Debug, Clone)]
pub struct JobRunRow {
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
}

const JOB_RUN_SELECT: &str = "SELECT r.id AS id, r.job_id AS job_id, r.launch_id AS launch_id, \
     r.project_id AS project_id, r.uid AS uid, r.name AS name, r.url AS url, r.stage AS stage, \
     r.status AS status, r.error_message AS error_message, r.parameters AS parameters, \
     r.created_ms AS created_ms, r.modified_ms AS modified_ms, j.uid AS job_uid, j.name AS job_name, \
     j.url AS job_url, j.ci_type AS ci_type, \
     (SELECT COUNT(*) FROM test_results t WHERE t.job_run_id = r.id) AS result_count \
     FROM job_runs r JOIN jobs j ON j.id = r.job_id";

fn job_run_from(r: &AnyRow) -> ServerResult<JobRunRow> {
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
    })
}

impl JobRunRow {
    pub fn to_dto(&self, public_url: &str) -> api::JobRunDto {
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
        }
    }

    pub fn to_external(&self) -> api::ExternalRunResponse {
        api::ExternalRunResponse {
            job_id: self.job_id,
            job_run_id: self.id,
            launch_id: self.launch_id,
            project_id: self.project_id,
        }
    }
}

pub async fn get_job_run(db: &Db, id: Id) -> ServerResult<Option<JobRunRow>> {
    let r = sqlx::query(&format!("{JOB_RUN_SELECT} WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(&db.read)
        .await?;
    r.as_ref().map(job_run_from).transpose()
}

pub async fn find_job_run(
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

pub async fn launch_job_runs(db: &Db, launch_id: Id) -> ServerResult<Vec<JobRunRow>> {
    let rows = sqlx::query(&format!(
        "{JOB_RUN_SELECT} WHERE r.launch_id = $1 ORDER BY r.id"
    ))
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(job_run_from).collect()
}

#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: Id,
    pub project_id: Id,
    pub uid: String,
    pub name: String,
    pub url: Option<String>,
    pub ci_type: Option<String>,
    pub parameters: Vec<api::ParameterDto>,
}

impl JobRow {
    pub fn to_dto(&self) -> api::JobDto {
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

fn job_from(r: &AnyRow) -> ServerResult<JobRow> {
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

pub async fn find_job(db: &Db, project_id: Id, uid: &str) -> ServerResult<Option<JobRow>> {
    let r = sqlx::query(
        "SELECT id, project_id, uid, name, url, ci_type, parameters FROM jobs WHERE project_id = $1 AND uid = $2",
    )
    .bind(project_id)
    .bind(uid)
    .fetch_optional(&db.read)
    .await?;
    r.as_ref().map(job_from).transpose()
}

pub async fn list_jobs(db: &Db, project_id: Id) -> ServerResult<Vec<JobRow>> {
    let rows = sqlx::query(
        "SELECT id, project_id, uid, name, url, ci_type, parameters FROM jobs WHERE project_id = $1 ORDER BY id",
    )
    .bind(project_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(job_from).collect()
}

/// Outcome of `upload/start`.
pub enum StartOutcome {
    Ok(api::ExternalRunResponse),
    /// The launch to join is closed.
    LaunchClosed(Id),
}

/// Create-or-join, atomic under concurrency: one transaction upserts the job,
/// looks for the job run, and only if there is none creates the launch (unless
/// one was given) and the job run. If a concurrent request inserted the same
/// job run first, the unique constraint makes our insert a no-op; we roll back
/// (so no orphan launch remains) and join theirs.
pub async fn start_run(db: &Db, req: &api::ExternalRunStart) -> ServerResult<StartOutcome> {
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
                insert_launch(&mut *tx, req.project_id, &create).await?
            }
        };
        let inserted = sqlx::query(
            "INSERT INTO job_runs (job_id, launch_id, project_id, uid, name, url, stage, status, parameters, created_ms, modified_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'unknown', $8, $9, $9) ON CONFLICT (job_id, uid) DO NOTHING RETURNING id",
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
pub async fn touch_job_run(db: &Db, id: Id) -> ServerResult<()> {
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
/// results: any failed or broken latest attempt makes it `failed`.
pub async fn stop_job_run(db: &Db, run: &JobRunRow, status: Option<&str>) -> ServerResult<()> {
    let status = match status.map(|s| s.trim().to_ascii_lowercase()) {
        Some(s) if ["passed", "failed", "cancelled", "unknown"].contains(&s.as_str()) => s,
        Some(s) => {
            return Err(ServerError::bad(format!(
                "field `status`: expected passed, failed, cancelled or unknown, got {s:?}"
            )))
        }
        None => {
            let bad: i64 = sqlx::query(&format!(
                "SELECT COUNT(*) AS n FROM test_results t WHERE t.job_run_id = $1 \
                 AND t.status IN ('failed', 'broken') AND {LATEST}"
            ))
            .bind(run.id)
            .fetch_one(&db.read)
            .await?
            .try_get("n")?;
            if bad > 0 { "failed" } else { "passed" }.to_string()
        }
    };
    sqlx::query("UPDATE job_runs SET stage = $1, status = $2, modified_ms = $3 WHERE id = $4")
        .bind(api::stage::FINISHED)
        .bind(status)
        .bind(now_ms())
        .bind(run.id)
        .execute(&db.write)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- sessions

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: Id,
    pub project_id: Id,
    pub launch_id: Id,
    pub job_run_id: Option<Id>,
}

impl SessionRow {
    pub fn to_dto(&self, job_id: Option<Id>) -> api::SessionDto {
        api::SessionDto {
            id: self.id,
            job_id,
            job_run_id: self.job_run_id,
            launch_id: self.launch_id,
            project_id: self.project_id,
        }
    }
}

/// Creates a session. Environment entries whose names look secret are dropped.
pub async fn create_session(
    db: &Db,
    project_id: Id,
    launch_id: Id,
    job_run_id: Option<Id>,
    environment: &[api::KeyValue],
) -> ServerResult<SessionRow> {
    let env: Vec<&api::KeyValue> = environment
        .iter()
        .filter(|kv| !api::is_secret_name(&kv.key))
        .take(1000)
        .collect();
    let row = sqlx::query(
        "INSERT INTO sessions (project_id, launch_id, job_run_id, environment, created_ms) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(project_id)
    .bind(launch_id)
    .bind(job_run_id)
    .bind(serde_json::to_string(&env).unwrap_or_else(|_| "[]".into()))
    .bind(now_ms())
    .fetch_one(&db.write)
    .await?;
    Ok(SessionRow {
        id: row.try_get("id")?,
        project_id,
        launch_id,
        job_run_id,
    })
}

pub async fn get_session(db: &Db, id: Id) -> ServerResult<Option<SessionRow>> {
    let r = sqlx::query("SELECT id, project_id, launch_id, job_run_id FROM sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.read)
        .await?;
    Ok(match r {
        Some(r) => Some(SessionRow {
            id: get_i64(&r, "id")?,
            project_id: get_i64(&r, "project_id")?,
            launch_id: get_i64(&r, "launch_id")?,
            job_run_id: opt_i64(&r, "job_run_id"),
        }),
        None => None,
    })
}

// ---------------------------------------------------------------- results

fn step_attachments(steps: &[api::UploadStep], out: &mut Vec<api::UploadAttachment>) {
    for s in steps {
        if let Some(a) = &s.attachment {
            out.push(a.clone());
        }
        step_attachments(&s.steps, out);
    }
}

/// Every attachment a result declares (top level and in steps).
pub fn declared_attachments(r: &api::UploadTestResult) -> Vec<api::UploadAttachment> {
    let mut out = r.attachments.clone();
    step_attachments(&r.steps, &mut out);
    out
}

/// Stores a batch of results into a session's launch and job run. A result
/// whose uuid is already in the launch is left as it is and its id returned.
pub async fn ingest_results(
    db: &Db,
    session: &SessionRow,
    results: &[api::UploadTestResult],
) -> ServerResult<Vec<api::ResultRef>> {
    for (i, r) in results.iter().enumerate() {
        if r.uuid.trim().is_empty() {
            return Err(ServerError::bad(format!(
                "results[{i}].uuid must not be empty"
            )));
        }
        if r.uuid.len() > 255 {
            return Err(ServerError::bad(format!(
                "results[{i}].uuid is longer than 255 characters"
            )));
        }
    }
    let now = now_ms();
    let mut out: Vec<Option<api::ResultRef>> = vec![None; results.len()];
    // Insert in uuid order so concurrent batches (other replicas) take row
    // locks in the same order and cannot deadlock.
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by(|a, b| results[*a].uuid.cmp(&results[*b].uuid));
    // Server-led launches: the newly inserted results, for test-case tracking.
    let mut tracked: Vec<(Id, &api::UploadTestResult)> = Vec::new();
    let mut tx = db.write.begin().await?;
    let closed: i64 = sqlx::query("SELECT closed FROM launches WHERE id = $1")
        .bind(session.launch_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("closed")?;
    if closed != 0 {
        tx.rollback().await?;
        return Err(ServerError::launch_closed(session.launch_id));
    }
    for i in order {
        let r = &results[i];
        let status = api::normalize_status(r.status.as_deref());
        let test_key = r
            .history_id
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| r.uuid.clone());
        let duration = r.duration.or(match (r.start, r.stop) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        });
        let body = serde_json::to_string(r).unwrap_or_else(|_| "{}".into());
        let inserted = sqlx::query(
            "INSERT INTO test_results (project_id, launch_id, job_run_id, session_id, uuid, test_key, history_id, \
             test_case_id, name, full_name, status, message, trace, start_ms, stop_ms, duration_ms, body, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
             ON CONFLICT (launch_id, uuid) DO NOTHING RETURNING id",
        )
        .bind(session.project_id)
        .bind(session.launch_id)
        .bind(session.job_run_id)
        .bind(session.id)
        .bind(&r.uuid)
        .bind(clip(&test_key, 1024))
        .bind(clip_opt(&r.history_id, 1024))
        .bind(clip_opt(&r.test_case_id, 1024))
        .bind(clip(&r.name, MAX_NAME))
        .bind(clip_opt(&r.full_name, 4096))
        .bind(status)
        .bind(clip_opt(&r.message, MAX_TEXT))
        .bind(clip_opt(&r.trace, MAX_TEXT))
        .bind(r.start)
        .bind(r.stop)
        .bind(duration)
        .bind(body)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let id: i64 = match inserted {
            Some(row) => {
                let id: i64 = row.try_get("id")?;
                for a in declared_attachments(r) {
                    if a.original_file_name.is_empty() {
                        continue;
                    }
                    sqlx::query(
                        "INSERT INTO attachments (test_result_id, file_name, name, content_type, size, sha256, created_ms) \
                         VALUES ($1, $2, $3, $4, $5, NULL, $6) ON CONFLICT (test_result_id, file_name) DO NOTHING",
                    )
                    .bind(id)
                    .bind(clip(&a.original_file_name, 1024))
                    .bind(clip(&a.name, MAX_NAME))
                    .bind(clip_opt(&a.content_type, 255))
                    .bind(a.content_length)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tracked.push((id, r));
                id
            }
            None => sqlx::query("SELECT id FROM test_results WHERE launch_id = $1 AND uuid = $2")
                .bind(session.launch_id)
                .bind(&r.uuid)
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?,
        };
        out[i] = Some(api::ResultRef {
            id,
            uuid: r.uuid.clone(),
        });
    }
    // Server-led launches: test cases and their default executors (server_led.rs).
    crate::server_led::track_test_cases(&mut tx, session, &tracked).await?;
    tx.commit().await?;
    Ok(out.into_iter().flatten().collect())
}

/// A stored result with the launch it belongs to (for access checks).
#[derive(Debug, Clone)]
pub struct ResultOwner {
    pub id: Id,
    pub project_id: Id,
    pub launch_id: Id,
}

pub async fn result_owner(db: &Db, id: Id) -> ServerResult<Option<ResultOwner>> {
    let r = sqlx::query("SELECT id, project_id, launch_id FROM test_results WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.read)
        .await?;
    Ok(match r {
        Some(r) => Some(ResultOwner {
            id: get_i64(&r, "id")?,
            project_id: get_i64(&r, "project_id")?,
            launch_id: get_i64(&r, "launch_id")?,
        }),
        None => None,
    })
}

/// Records attachment bytes (already in the blob store) for a result; the same
/// file name twice is one attachment.
pub async fn put_attachment(
    db: &Db,
    result_id: Id,
    file_name: &str,
    content_type: Option<&str>,
    size: i64,
    sha256: &str,
) -> ServerResult<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO attachments (test_result_id, file_name, name, content_type, size, sha256, created_ms) \
         VALUES ($1, $2, $2, $3, $4, $5, $6) ON CONFLICT (test_result_id, file_name) DO UPDATE \
         SET sha256 = excluded.sha256, size = excluded.size, \
         content_type = COALESCE(attachments.content_type, excluded.content_type)",
    )
    .bind(result_id)
    .bind(clip(file_name, 1024))
    .bind(content_type.map(|c| clip(c, 255)))
    .bind(size)
    .bind(sha256)
    .bind(now)
    .execute(&db.write)
    .await?;
    Ok(())
}

pub async fn put_fixtures(
    db: &Db,
    result_id: Id,
    fixtures: &[api::UploadFixture],
) -> ServerResult<Vec<Id>> {
    let now = now_ms();
    let mut ids = Vec::new();
    let mut tx = db.write.begin().await?;
    for (i, f) in fixtures.iter().enumerate() {
        let uuid = if f.uuid.is_empty() {
            format!("{}:{i}", f.kind)
        } else {
            clip(&f.uuid, 255)
        };
        let kind = if f.kind.eq_ignore_ascii_case("after") {
            "AFTER"
        } else {
            "BEFORE"
        };
        sqlx::query(
            "INSERT INTO fixtures (test_result_id, uuid, kind, name, status, body, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (test_result_id, uuid) DO NOTHING",
        )
        .bind(result_id)
        .bind(&uuid)
        .bind(kind)
        .bind(clip(&f.name, MAX_NAME))
        .bind(api::normalize_status(f.status.as_deref()))
        .bind(serde_json::to_string(f).unwrap_or_else(|_| "{}".into()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let id: i64 =
            sqlx::query("SELECT id FROM fixtures WHERE test_result_id = $1 AND uuid = $2")
                .bind(result_id)
                .bind(&uuid)
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?;
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}

/// Raw files (`/api/upload/file`) that are not results: kept per session and
/// matched to attachment references by file name.
pub async fn put_session_file(
    db: &Db,
    session_id: Id,
    file_name: &str,
    kind: &str,
    sha256: &str,
    size: i64,
    content_type: Option<&str>,
) -> ServerResult<()> {
    sqlx::query(
        "INSERT INTO session_files (session_id, file_name, kind, sha256, size, content_type, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (session_id, file_name) DO UPDATE \
         SET sha256 = excluded.sha256, size = excluded.size",
    )
    .bind(session_id)
    .bind(clip(file_name, 1024))
    .bind(kind)
    .bind(sha256)
    .bind(size)
    .bind(content_type.map(|c| clip(c, 255)))
    .bind(now_ms())
    .execute(&db.write)
    .await?;
    Ok(())
}

/// Session files of a kind, as (file name, sha256).
pub async fn session_files(
    db: &Db,
    session_id: Id,
    kind: &str,
) -> ServerResult<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT file_name, sha256 FROM session_files WHERE session_id = $1 AND kind = $2 ORDER BY id",
    )
    .bind(session_id)
    .bind(kind)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| Ok((get_str(r, "file_name")?, get_str(r, "sha256")?)))
        .collect()
}

/// Fills attachment rows of the session's results from the session's raw files.
pub async fn resolve_session_attachments(db: &Db, session_id: Id) -> ServerResult<()> {
    sqlx::query(
        "UPDATE attachments SET \
         sha256 = (SELECT sf.sha256 FROM session_files sf WHERE sf.session_id = $1 AND sf.file_name = attachments.file_name), \
         size = (SELECT sf.size FROM session_files sf WHERE sf.session_id = $1 AND sf.file_name = attachments.file_name) \
         WHERE sha256 IS NULL \
         AND test_result_id IN (SELECT id FROM test_results WHERE session_id = $1) \
         AND EXISTS (SELECT 1 FROM session_files sf WHERE sf.session_id = $1 AND sf.file_name = attachments.file_name)",
    )
    .bind(session_id)
    .execute(&db.write)
    .await?;
    Ok(())
}

/// Ids of results in a launch by uuid.
pub async fn result_ids_by_uuid(
    db: &Db,
    launch_id: Id,
    uuids: &[String],
) -> ServerResult<Vec<(String, Id)>> {
    let mut out = Vec::new();
    for u in uuids {
        if let Some(r) =
            sqlx::query("SELECT id FROM test_results WHERE launch_id = $1 AND uuid = $2")
                .bind(launch_id)
                .bind(u)
                .fetch_optional(&db.write)
                .await?
        {
            out.push((u.clone(), r.try_get("id")?));
        }
    }
    Ok(out)
}

pub async fn list_results(
    db: &Db,
    launch_id: Id,
    job_run_id: Option<Id>,
    page: i64,
    size: i64,
) -> ServerResult<(Vec<api::TestResultDto>, i64)> {
    let filter = if job_run_id.is_some() {
        "t.launch_id = $1 AND t.job_run_id = $2"
    } else {
        "t.launch_id = $1 AND $2 = $2"
    };
    let total: i64 = sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM test_results t WHERE {filter}"
    ))
    .bind(launch_id)
    .bind(job_run_id.unwrap_or(0))
    .fetch_one(&db.read)
    .await?
    .try_get("n")?;
    let rows = sqlx::query(&format!(
        "SELECT t.id AS id, t.uuid AS uuid, t.launch_id AS launch_id, t.job_run_id AS job_run_id, \
         t.name AS name, t.full_name AS full_name, t.history_id AS history_id, t.status AS status, \
         t.message AS message, t.start_ms AS start_ms, t.stop_ms AS stop_ms, \
         CASE WHEN {LATEST} THEN 0 ELSE 1 END AS retry, \
         (SELECT COUNT(*) FROM attachments a WHERE a.test_result_id = t.id) AS attachment_count, \
         (SELECT COUNT(*) FROM fixtures f WHERE f.test_result_id = t.id) AS fixture_count \
         FROM test_results t WHERE {filter} ORDER BY t.id LIMIT $3 OFFSET $4"
    ))
    .bind(launch_id)
    .bind(job_run_id.unwrap_or(0))
    .bind(size)
    .bind(page * size)
    .fetch_all(&db.read)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(api::TestResultDto {
            id: get_i64(r, "id")?,
            uuid: get_str(r, "uuid")?,
            launch_id: get_i64(r, "launch_id")?,
            job_run_id: opt_i64(r, "job_run_id"),
            name: get_str(r, "name")?,
            full_name: opt_str(r, "full_name"),
            history_id: opt_str(r, "history_id"),
            status: get_str(r, "status")?,
            message: opt_str(r, "message"),
            start: opt_i64(r, "start_ms"),
            stop: opt_i64(r, "stop_ms"),
            retry: get_i64(r, "retry")? != 0,
            attachment_count: get_i64(r, "attachment_count")?,
            fixture_count: get_i64(r, "fixture_count")?,
        });
    }
    Ok((out, total))
}

/// Attachments of a result: (id, file name, name, content type, size, sha256).
pub type AttachmentRow = (
    Id,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
);

pub async fn result_attachments(db: &Db, result_id: Id) -> ServerResult<Vec<AttachmentRow>> {
    let rows = sqlx::query(
        "SELECT id, file_name, name, content_type, size, sha256 FROM attachments WHERE test_result_id = $1 ORDER BY id",
    )
    .bind(result_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                get_i64(r, "id")?,
                get_str(r, "file_name")?,
                get_str(r, "name")?,
                opt_str(r, "content_type"),
                opt_i64(r, "size"),
                opt_str(r, "sha256"),
            ))
        })
        .collect()
}

/// The full stored body of a result.
pub async fn result_body(db: &Db, result_id: Id) -> ServerResult<Option<Value>> {
    let r = sqlx::query("SELECT body FROM test_results WHERE id = $1")
        .bind(result_id)
        .fetch_optional(&db.read)
        .await?;
    Ok(match r {
        Some(r) => Some(serde_json::from_str(&get_str(&r, "body")?).unwrap_or(Value::Null)),
        None => None,
    })
}

/// Fixture bodies of a result.
pub async fn result_fixtures(db: &Db, result_id: Id) -> ServerResult<Vec<Value>> {
    let rows = sqlx::query("SELECT body FROM fixtures WHERE test_result_id = $1 ORDER BY id")
        .bind(result_id)
        .fetch_all(&db.read)
        .await?;
    rows.iter()
        .map(|r| Ok(serde_json::from_str(&get_str(r, "body")?).unwrap_or(Value::Null)))
        .collect()
}

/// Declares an attachment file name on a result without bytes (yet).
pub async fn put_attachment_ref(db: &Db, result_id: Id, file_name: &str) -> ServerResult<()> {
    sqlx::query(
        "INSERT INTO attachments (test_result_id, file_name, name, content_type, size, sha256, created_ms) \
         VALUES ($1, $2, $2, NULL, NULL, NULL, $3) ON CONFLICT (test_result_id, file_name) DO NOTHING",
    )
    .bind(result_id)
    .bind(clip(file_name, 1024))
    .bind(now_ms())
    .execute(&db.write)
    .await?;
    Ok(())
}

/// An attachment's (result id, content type, sha256).
pub async fn attachment_by_id(
    db: &Db,
    id: Id,
) -> ServerResult<Option<(Id, Option<String>, Option<String>)>> {
    let r =
        sqlx::query("SELECT test_result_id, content_type, sha256 FROM attachments WHERE id = $1")
            .bind(id)
            .fetch_optional(&db.read)
            .await?;
    Ok(match r {
        Some(r) => Some((
            get_i64(&r, "test_result_id")?,
            opt_str(&r, "content_type"),
            opt_str(&r, "sha256"),
        )),
        None => None,
    })
}

/// The result a fixture belongs to.
pub async fn fixture_result_id(db: &Db, fixture_id: Id) -> ServerResult<Option<Id>> {
    let r = sqlx::query("SELECT test_result_id FROM fixtures WHERE id = $1")
        .bind(fixture_id)
        .fetch_optional(&db.read)
        .await?;
    Ok(match r {
        Some(r) => Some(get_i64(&r, "test_result_id")?),
        None => None,
    })
}
