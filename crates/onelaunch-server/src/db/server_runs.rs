//! Server-led runs (`server_runs`): the run-creation transaction (launch,
//! run row with request-id idempotency, one job run per executor job and its
//! test plan items) and the lookups of a run.

use std::collections::BTreeMap;

use onelaunch_api::{self as api, Id};
use serde_json::Value;
use sqlx::Row;

use super::*;
use crate::error::ServerResult;

/// A server-led run to store.
pub(crate) struct NewRun<'a> {
    pub(crate) project_id: Id,
    pub(crate) plan_id: Option<Id>,
    /// Idempotency key: one run per (project, request id).
    pub(crate) request_id: Option<&'a str>,
    /// Launch name (already bounded).
    pub(crate) name: &'a str,
    pub(crate) tags: &'a [String],
    pub(crate) issues: &'a [Value],
    /// The run variables as asked for (kept for the launch page).
    pub(crate) environment: &'a [api::KeyValue],
    /// Cases nobody runs (manual).
    pub(crate) manual: &'a [Id],
    /// The uid of the launch's job runs, from the launch id.
    pub(crate) job_run_uid: fn(Id) -> String,
    pub(crate) jobs: Vec<NewJobRun>,
    pub(crate) now: i64,
}

/// One executor job's job run (stage `scheduled`) and its test plan.
pub(crate) struct NewJobRun {
    pub(crate) job_id: Id,
    pub(crate) parameters: Vec<api::ParameterDto>,
    /// `(test case id, ref id, selector)` in plan order.
    pub(crate) items: Vec<(Id, i64, String)>,
}

/// What [`create_run`] did.
pub(crate) enum CreatedRun {
    /// Stored: the launch and the job run ids, in the order of `jobs`.
    Created { launch_id: Id, job_runs: Vec<Id> },
    /// A run with the same request id exists (a concurrent request won);
    /// nothing was stored.
    Duplicate,
}

/// Stores a run in one transaction: the launch, the `server_runs` row (unique
/// per project and request id), the job runs named `<launch name> (<uid>)` and
/// their plan items.
pub(crate) async fn create_run(db: &Db, run: &NewRun<'_>) -> ServerResult<CreatedRun> {
    let mut tx = db.write.begin().await?;
    let launch_id: i64 = sqlx::query(
        "INSERT INTO launches (project_id, name, closed, external, autoclose, tags, links, issues, created_ms, modified_ms) \
         VALUES ($1, $2, 0, 0, 0, $3, '[]', $4, $5, $5) RETURNING id",
    )
    .bind(run.project_id)
    .bind(run.name)
    .bind(serde_json::to_string(run.tags).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(run.issues).unwrap_or_else(|_| "[]".into()))
    .bind(run.now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    let stored = sqlx::query(
        "INSERT INTO server_runs (launch_id, project_id, plan_id, request_id, environment, manual_cases, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (project_id, request_id) DO NOTHING RETURNING launch_id",
    )
    .bind(launch_id)
    .bind(run.project_id)
    .bind(run.plan_id)
    .bind(run.request_id)
    .bind(serde_json::to_string(run.environment).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(run.manual).unwrap_or_else(|_| "[]".into()))
    .bind(run.now)
    .fetch_optional(&mut *tx)
    .await?;
    if stored.is_none() {
        tx.rollback().await?;
        return Ok(CreatedRun::Duplicate);
    }
    let uid = (run.job_run_uid)(launch_id);
    let mut job_runs = Vec::with_capacity(run.jobs.len());
    for job in &run.jobs {
        let run_id: i64 = sqlx::query(
            "INSERT INTO job_runs (job_id, launch_id, project_id, uid, name, url, stage, status, parameters, created_ms, modified_ms) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, 'unknown', $7, $8, $8) RETURNING id",
        )
        .bind(job.job_id)
        .bind(launch_id)
        .bind(run.project_id)
        .bind(&uid)
        .bind(format!("{} ({uid})", run.name))
        .bind(api::stage::SCHEDULED)
        .bind(serde_json::to_string(&job.parameters).unwrap_or_else(|_| "[]".into()))
        .bind(run.now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        for (case_id, ref_id, selector) in &job.items {
            sqlx::query(
                "INSERT INTO job_run_plan_items (job_run_id, test_case_id, ref_id, selector) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (job_run_id, test_case_id) DO NOTHING",
            )
            .bind(run_id)
            .bind(*case_id)
            .bind(*ref_id)
            .bind(selector)
            .execute(&mut *tx)
            .await?;
        }
        job_runs.push(run_id);
    }
    tx.commit().await?;
    Ok(CreatedRun::Created {
        launch_id,
        job_runs,
    })
}

/// The launch of the run with this request id (read from the writer, so a run
/// just committed by a concurrent request is seen).
pub(crate) async fn run_by_request(
    db: &Db,
    project_id: Id,
    request_id: &str,
) -> ServerResult<Option<Id>> {
    sqlx::query("SELECT launch_id FROM server_runs WHERE project_id = $1 AND request_id = $2")
        .bind(project_id)
        .bind(request_id)
        .fetch_optional(&db.write)
        .await?
        .map(|r| get_i64(&r, "launch_id"))
        .transpose()
}

/// A stored run as its launch knows it.
pub(crate) struct ServerRunRow {
    pub(crate) plan_id: Option<Id>,
    /// Cases nobody runs (manual), in plan order.
    pub(crate) manual_cases: Vec<Id>,
}

/// The run that created a launch; `None` for a launch not created by a run.
pub(crate) async fn get_run(db: &Db, launch_id: Id) -> ServerResult<Option<ServerRunRow>> {
    let r = sqlx::query("SELECT plan_id, manual_cases FROM server_runs WHERE launch_id = $1")
        .bind(launch_id)
        .fetch_optional(&db.read)
        .await?;
    Ok(match r {
        Some(r) => Some(ServerRunRow {
            plan_id: opt_i64(&r, "plan_id"),
            manual_cases: serde_json::from_str(&get_str(&r, "manual_cases")?).unwrap_or_default(),
        }),
        None => None,
    })
}

/// The planned test case ids of each job run of a launch, in plan order.
pub(crate) async fn launch_plan_items(
    db: &Db,
    launch_id: Id,
) -> ServerResult<BTreeMap<Id, Vec<Id>>> {
    let mut items: BTreeMap<Id, Vec<Id>> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT i.job_run_id AS job_run_id, i.test_case_id AS test_case_id FROM job_run_plan_items i \
         JOIN job_runs r ON r.id = i.job_run_id WHERE r.launch_id = $1 ORDER BY i.id",
    )
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?
    {
        items
            .entry(get_i64(&r, "job_run_id")?)
            .or_default()
            .push(get_i64(&r, "test_case_id")?);
    }
    Ok(items)
}

/// Marks the planned tests of a job run whose test cases just got a result
/// there (inside the ingest transaction).
pub(crate) async fn mark_reported(
    conn: &mut sqlx::AnyConnection,
    job_run_id: Id,
    cases: &[Id],
) -> ServerResult<()> {
    for chunk in cases.chunks(500) {
        let sql = super::shaped(conn, "mark_reported", chunk.len(), |mut p, n| {
            format!(
                "UPDATE job_run_plan_items SET reported = 1 WHERE job_run_id = {} AND reported = 0 \
                 AND test_case_id IN ({})",
                p.next(),
                p.list(n)
            )
        });
        let mut q = sqlx::query(&sql).bind(job_run_id);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The planned scope of each job run of a launch (job runs without a plan
/// are left out), in plan order.
pub(crate) async fn planned_scopes(
    db: &Db,
    launch_id: Id,
) -> ServerResult<BTreeMap<Id, api::PlannedScope>> {
    planned_where(db, "r.launch_id = $1", launch_id).await
}

/// The planned scope of one job run; `None` when it has no plan.
pub(crate) async fn job_run_planned(
    db: &Db,
    job_run_id: Id,
) -> ServerResult<Option<api::PlannedScope>> {
    Ok(planned_where(db, "r.id = $1", job_run_id)
        .await?
        .remove(&job_run_id))
}

/// The planned scope of a launch: its job runs' scopes together; `None` when
/// no server-led run created it.
pub(crate) async fn launch_planned(
    db: &Db,
    launch_id: Id,
) -> ServerResult<Option<api::PlannedScope>> {
    if get_run(db, launch_id).await?.is_none() {
        return Ok(None);
    }
    let mut all = api::PlannedScope::default();
    for (_, s) in planned_scopes(db, launch_id).await? {
        all.planned += s.planned;
        all.reported += s.reported;
        let room = api::PlannedScope::MAX_LISTED.saturating_sub(all.missing.len());
        all.missing.extend(s.missing.into_iter().take(room));
    }
    Ok(Some(all))
}

async fn planned_where(
    db: &Db,
    filter: &str,
    id: Id,
) -> ServerResult<BTreeMap<Id, api::PlannedScope>> {
    let mut scopes: BTreeMap<Id, api::PlannedScope> = BTreeMap::new();
    let rows = sqlx::query(&format!(
        "SELECT i.job_run_id AS job_run_id, i.test_case_id AS test_case_id, i.reported AS reported, \
         c.name AS name FROM job_run_plan_items i JOIN job_runs r ON r.id = i.job_run_id \
         JOIN test_cases c ON c.id = i.test_case_id WHERE {filter} ORDER BY i.id"
    ))
    .bind(id)
    .fetch_all(&db.read)
    .await?;
    for r in rows {
        let run = get_i64(&r, "job_run_id")?;
        let s = scopes.entry(run).or_default();
        s.planned += 1;
        if get_i64(&r, "reported")? != 0 {
            s.reported += 1;
        } else if s.missing.len() < api::PlannedScope::MAX_LISTED {
            s.missing.push(api::PlannedCase {
                test_case_id: get_i64(&r, "test_case_id")?,
                name: get_str(&r, "name")?,
                job_run_id: Some(run),
            });
        }
    }
    Ok(scopes)
}
