//! Test plans: `test_plans`, their explicit cases (`test_plan_cases`) and
//! per-plan executor overrides (`test_plan_executors`).

use onelaunch_api::{self as api, Id};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::*;
use crate::error::ServerResult;

#[derive(Debug, Clone)]
pub(crate) struct PlanRow {
    pub(crate) id: Id,
    pub(crate) project_id: Id,
    pub(crate) name: String,
    pub(crate) filter: Option<api::TestCaseFilter>,
    pub(crate) created_ms: i64,
}

pub(crate) fn plan_from(r: &AnyRow) -> ServerResult<PlanRow> {
    Ok(PlanRow {
        id: get_i64(r, "id")?,
        project_id: get_i64(r, "project_id")?,
        name: get_str(r, "name")?,
        filter: opt_str(r, "filter").and_then(|f| serde_json::from_str(&f).ok()),
        created_ms: get_i64(r, "created_ms")?,
    })
}

pub(crate) async fn get_plan(db: &Db, id: Id) -> ServerResult<Option<PlanRow>> {
    let r = sqlx::query(
        "SELECT id, project_id, name, filter, created_ms FROM test_plans WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.read)
    .await?;
    r.as_ref().map(plan_from).transpose()
}

/// The explicit cases of a plan (`test_plan_cases`), by id.
pub(crate) async fn plan_case_ids(db: &Db, plan_id: Id) -> ServerResult<Vec<Id>> {
    let rows = sqlx::query(
        "SELECT test_case_id FROM test_plan_cases WHERE plan_id = $1 ORDER BY test_case_id",
    )
    .bind(plan_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(|r| get_i64(r, "test_case_id")).collect()
}

/// Stores a plan and its explicit cases in one transaction; returns its id.
pub(crate) async fn insert_plan(
    db: &Db,
    project_id: Id,
    name: &str,
    filter: Option<&api::TestCaseFilter>,
    case_ids: &[Id],
    now: i64,
) -> ServerResult<Id> {
    let mut tx = db.write.begin().await?;
    let id: i64 = sqlx::query(
        "INSERT INTO test_plans (project_id, name, filter, created_ms, modified_ms) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(project_id)
    .bind(name)
    .bind(filter.map(|f| serde_json::to_string(f).unwrap_or_default()))
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    for case in case_ids {
        sqlx::query(
            "INSERT INTO test_plan_cases (plan_id, test_case_id) VALUES ($1, $2) \
             ON CONFLICT (plan_id, test_case_id) DO NOTHING",
        )
        .bind(id)
        .bind(*case)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// The plan's executor overrides: test case id -> job (`None` = manual).
pub(crate) async fn plan_executors(
    db: &Db,
    plan_id: Id,
) -> ServerResult<std::collections::HashMap<Id, Option<Id>>> {
    let mut out = std::collections::HashMap::new();
    for r in sqlx::query("SELECT test_case_id, job_id FROM test_plan_executors WHERE plan_id = $1")
        .bind(plan_id)
        .fetch_all(&db.read)
        .await?
    {
        out.insert(get_i64(&r, "test_case_id")?, opt_i64(&r, "job_id"));
    }
    Ok(out)
}

/// A change of executor overrides.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ExecutorChange {
    /// Back to the case's default executor (the override is removed).
    Reset,
    /// Run by this job, or nobody (`None` = manual).
    Assign(Option<Id>),
}

/// Applies one change to the given cases of a plan, in one transaction.
pub(crate) async fn set_executors(
    db: &Db,
    plan_id: Id,
    case_ids: impl IntoIterator<Item = Id>,
    change: ExecutorChange,
    now: i64,
) -> ServerResult<()> {
    let mut tx = db.write.begin().await?;
    for case in case_ids {
        match change {
            ExecutorChange::Reset => {
                sqlx::query(
                    "DELETE FROM test_plan_executors WHERE plan_id = $1 AND test_case_id = $2",
                )
                .bind(plan_id)
                .bind(case)
                .execute(&mut *tx)
                .await?;
            }
            ExecutorChange::Assign(job_id) => {
                sqlx::query(
                    "INSERT INTO test_plan_executors (plan_id, test_case_id, job_id, modified_ms) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (plan_id, test_case_id) DO UPDATE \
                     SET job_id = excluded.job_id, modified_ms = excluded.modified_ms",
                )
                .bind(plan_id)
                .bind(case)
                .bind(job_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The plans of a project, oldest first.
pub(crate) async fn list_plans(db: &Db, project_id: Id) -> ServerResult<Vec<PlanRow>> {
    let rows = sqlx::query(
        "SELECT id, project_id, name, filter, created_ms FROM test_plans WHERE project_id = $1 ORDER BY id",
    )
    .bind(project_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(plan_from).collect()
}
