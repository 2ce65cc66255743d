//! Test plans: `test_plans`, their explicit cases (`test_plan_cases`) and
//! per-plan executor overrides (`test_plan_executors`).

use onelaunch_api::{self as api, Id};
use sqlx::any::AnyRow;

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
