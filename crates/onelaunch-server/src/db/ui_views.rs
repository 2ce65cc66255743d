//! Read models of the jobs and test plan pages (a job's recent runs, the
//! plan list, a plan's launches); the launch and result pages' read models
//! are in `views`, the manual cases of a launch in `server_led::manual`.

use onelaunch_api::{self as api, Id};
use sqlx::Row;

use crate::db::{get_i64, get_str, Db};
use crate::error::ServerResult;

// ---------------------------------------------------------------- jobs

/// A recent run of a job, for the job's page.
pub(crate) struct JobRecentRun {
    pub id: Id,
    pub name: String,
    pub stage: String,
    pub status: String,
    pub launch_id: Id,
    pub launch_name: String,
    pub created_ms: i64,
}

/// The last ten runs of a job, newest first.
pub(crate) async fn recent_job_runs(db: &Db, job_id: Id) -> ServerResult<Vec<JobRecentRun>> {
    let rows = sqlx::query(
        "SELECT r.id AS id, r.name AS name, r.stage AS stage, r.status AS status, r.launch_id AS launch_id, \
         l.name AS launch_name, r.created_ms AS created_ms FROM job_runs r JOIN launches l ON l.id = r.launch_id \
         WHERE r.job_id = $1 ORDER BY r.id DESC LIMIT 10",
    )
    .bind(job_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(JobRecentRun {
                id: get_i64(r, "id")?,
                name: get_str(r, "name")?,
                stage: get_str(r, "stage")?,
                status: get_str(r, "status")?,
                launch_id: get_i64(r, "launch_id")?,
                launch_name: get_str(r, "launch_name")?,
                created_ms: get_i64(r, "created_ms")?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------- test plans

/// A line of the test plan list.
pub(crate) struct PlanListItem {
    pub id: Id,
    pub name: String,
    pub filter: Option<api::TestCaseFilter>,
    pub created_ms: i64,
    /// Explicitly chosen test cases.
    pub cases: i64,
    /// Server-led runs started from the plan.
    pub runs: i64,
}

/// One page of a project's test plans, newest first, and how many there are.
pub(crate) async fn list_plans(
    db: &Db,
    project_id: Id,
    page: i64,
    per_page: i64,
) -> ServerResult<(Vec<PlanListItem>, i64)> {
    let total = get_i64(
        &sqlx::query("SELECT COUNT(*) AS n FROM test_plans WHERE project_id = $1")
            .bind(project_id)
            .fetch_one(&db.read)
            .await?,
        "n",
    )?;
    let rows = sqlx::query(
        "SELECT p.id AS id, p.name AS name, p.filter AS filter, p.created_ms AS created_ms, \
         (SELECT COUNT(*) FROM test_plan_cases c WHERE c.plan_id = p.id) AS cases, \
         (SELECT COUNT(*) FROM server_runs r WHERE r.plan_id = p.id) AS runs \
         FROM test_plans p WHERE p.project_id = $1 ORDER BY p.id DESC LIMIT $2 OFFSET $3",
    )
    .bind(project_id)
    .bind(per_page)
    .bind(page * per_page)
    .fetch_all(&db.read)
    .await?;
    let items = rows
        .iter()
        .map(|r| {
            Ok(PlanListItem {
                id: get_i64(r, "id")?,
                name: get_str(r, "name")?,
                filter: r
                    .try_get::<Option<String>, _>("filter")?
                    .and_then(|f| serde_json::from_str(&f).ok()),
                created_ms: get_i64(r, "created_ms")?,
                cases: get_i64(r, "cases")?,
                runs: get_i64(r, "runs")?,
            })
        })
        .collect::<ServerResult<Vec<_>>>()?;
    Ok((items, total))
}

/// A launch started from a test plan.
pub(crate) struct PlanLaunch {
    pub id: Id,
    pub name: String,
    pub closed: bool,
    pub created_ms: i64,
}

/// The last twenty launches of a plan, newest first.
pub(crate) async fn plan_launches(db: &Db, plan_id: Id) -> ServerResult<Vec<PlanLaunch>> {
    let rows = sqlx::query(
        "SELECT l.id AS id, l.name AS name, l.closed AS closed, l.created_ms AS created_ms \
         FROM server_runs r JOIN launches l ON l.id = r.launch_id WHERE r.plan_id = $1 \
         ORDER BY l.id DESC LIMIT 20",
    )
    .bind(plan_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PlanLaunch {
                id: get_i64(r, "id")?,
                name: get_str(r, "name")?,
                closed: get_i64(r, "closed")? != 0,
                created_ms: get_i64(r, "created_ms")?,
            })
        })
        .collect()
}
