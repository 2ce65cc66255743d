//! Who does which manual case: assignments of a launch's manual cases
//! (`manual_assignments`) and a plan's default assignees
//! (`plan_manual_assignees`, copied into a launch when the plan runs).

use std::collections::BTreeMap;

use onelaunch_api::Id;
use sqlx::AnyConnection;

use super::*;
use crate::error::ServerResult;

/// The longest assignee kept.
pub(crate) const MAX_ASSIGNEE: usize = 255;

/// Gives a case of a launch to someone (`None`: takes it back); the caller's
/// transaction.
pub(crate) async fn set_assignment(
    conn: &mut AnyConnection,
    project_id: Id,
    launch_id: Id,
    case_id: Id,
    assignee: Option<&str>,
    by: Option<&str>,
) -> ServerResult<()> {
    match assignee {
        None => {
            sqlx::query(
                "DELETE FROM manual_assignments WHERE launch_id = $1 AND test_case_id = $2",
            )
            .bind(launch_id)
            .bind(case_id)
            .execute(&mut *conn)
            .await?;
        }
        Some(a) => {
            sqlx::query(
                "INSERT INTO manual_assignments (project_id, launch_id, test_case_id, assignee, assigned_ms, assigned_by) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (launch_id, test_case_id) DO UPDATE \
                 SET assignee = excluded.assignee, assigned_ms = excluded.assigned_ms, assigned_by = excluded.assigned_by",
            )
            .bind(project_id)
            .bind(launch_id)
            .bind(case_id)
            .bind(clip(a, MAX_ASSIGNEE))
            .bind(now_ms())
            .bind(by.map(|b| clip(b, MAX_ASSIGNEE)))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// The assignees of a launch's manual cases, by case.
pub(crate) async fn assignments(db: &Db, launch_id: Id) -> ServerResult<BTreeMap<Id, String>> {
    let rows = sqlx::query(
        "SELECT test_case_id, assignee FROM manual_assignments WHERE launch_id = $1 ORDER BY id",
    )
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| Ok((get_i64(r, "test_case_id")?, get_str(r, "assignee")?)))
        .collect()
}

/// Sets (or, with `None`, removes) a plan's default assignee of a case.
pub(crate) async fn set_plan_assignee(
    db: &Db,
    plan_id: Id,
    case_id: Id,
    assignee: Option<&str>,
) -> ServerResult<()> {
    match assignee {
        None => {
            sqlx::query(
                "DELETE FROM plan_manual_assignees WHERE plan_id = $1 AND test_case_id = $2",
            )
            .bind(plan_id)
            .bind(case_id)
            .execute(&db.write)
            .await?;
        }
        Some(a) => {
            sqlx::query(
                "INSERT INTO plan_manual_assignees (plan_id, test_case_id, assignee) VALUES ($1, $2, $3) \
                 ON CONFLICT (plan_id, test_case_id) DO UPDATE SET assignee = excluded.assignee",
            )
            .bind(plan_id)
            .bind(case_id)
            .bind(clip(a, MAX_ASSIGNEE))
            .execute(&db.write)
            .await?;
        }
    }
    Ok(())
}

/// A plan's default assignees, by case.
pub(crate) async fn plan_assignees(db: &Db, plan_id: Id) -> ServerResult<BTreeMap<Id, String>> {
    let rows = sqlx::query(
        "SELECT test_case_id, assignee FROM plan_manual_assignees WHERE plan_id = $1 ORDER BY id",
    )
    .bind(plan_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| Ok((get_i64(r, "test_case_id")?, get_str(r, "assignee")?)))
        .collect()
}
