//! Launches: create, read, list, close/reopen, delete, the statistic of latest
//! attempts (`LATEST`), named-env/category refs, and launch activity (`touch`,
//! expected job runs, the idle close statement).

use onelaunch_api::{self as api, Id};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::*;
use crate::error::{ServerError, ServerResult};

#[derive(Debug, Clone)]
pub(crate) struct LaunchRow {
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
    /// The quality-gate verdict stored when the launch closed.
    pub gate_passed: Option<bool>,
}

pub(crate) const LAUNCH_COLS: &str = "id, project_id, name, closed, external, autoclose, tags, links, issues, created_ms, modified_ms, expected_job_runs, gate_report";

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
        gate_passed: opt_str(r, "gate_report")
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["passed"].as_bool()),
    })
}

impl LaunchRow {
    pub(crate) fn to_dto(&self, public_url: &str) -> api::LaunchDto {
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
            gate_passed: self.gate_passed,
            participants: None,
            reruns: None,
            planned: None,
            environment: Vec::new(),
            combined_into: Vec::new(),
            combined_from: Vec::new(),
        }
    }
}

/// Inserts a launch inside the given connection/transaction.
pub(crate) async fn insert_launch<'c, E>(
    exec: E,
    project_id: Id,
    req: &api::LaunchCreate,
) -> ServerResult<Id>
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

pub(crate) async fn create_launch(db: &Db, req: &api::LaunchCreate) -> ServerResult<LaunchRow> {
    let id = insert_launch(&db.write, req.project_id, req).await?;
    get_launch_w(db, id).await
}

pub(crate) async fn get_launch_w(db: &Db, id: Id) -> ServerResult<LaunchRow> {
    let r = sqlx::query(&format!("SELECT {LAUNCH_COLS} FROM launches WHERE id = $1"))
        .bind(id)
        .fetch_one(&db.write)
        .await?;
    launch_from(&r)
}

pub(crate) async fn get_launch(db: &Db, id: Id) -> ServerResult<Option<LaunchRow>> {
    let r = sqlx::query(&format!("SELECT {LAUNCH_COLS} FROM launches WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.read)
        .await?;
    r.as_ref().map(launch_from).transpose()
}

pub(crate) async fn list_launches(
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
pub(crate) async fn set_launch_closed(db: &Db, id: Id, closed: bool) -> ServerResult<()> {
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

/// "No later attempt of the row's test in its launch", in SQL: `$row` is the
/// alias of the row tested (with `launch_id`, `test_key`, `start_ms`), `$id`
/// its result id, `$later` the alias the attempts of `test_results` are
/// searched under (through `test_results_key`).
macro_rules! no_later_attempt {
    ($row:literal, $id:literal, $later:literal) => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM test_results ",
            $later,
            " WHERE ",
            $later,
            ".launch_id = ",
            $row,
            ".launch_id AND ",
            $later,
            ".test_key = ",
            $row,
            ".test_key AND (COALESCE(",
            $later,
            ".start_ms, 0) > COALESCE(",
            $row,
            ".start_ms, 0) OR (COALESCE(",
            $later,
            ".start_ms, 0) = COALESCE(",
            $row,
            ".start_ms, 0) AND ",
            $later,
            ".id > ",
            $id,
            ")))"
        )
    };
}
pub(crate) use no_later_attempt;

/// The latest attempt of each test, in SQL: no later attempt with the same key.
pub(crate) const LATEST: &str = no_later_attempt!("t", "t.id", "u");

/// Counts by status, each test counted once by its latest attempt.
pub(crate) async fn launch_statistic(
    db: &Db,
    launch_id: Id,
) -> ServerResult<Vec<api::StatisticItem>> {
    statistic(db, launch_id, None).await
}

/// Counts by status of a launch's results (only the manual, or only the
/// automated ones, when `manual` says so), each test counted once by its
/// latest attempt.
pub(crate) async fn statistic(
    db: &Db,
    launch_id: Id,
    manual: Option<bool>,
) -> ServerResult<Vec<api::StatisticItem>> {
    let filter = if manual.is_some() {
        "t.manual = $2"
    } else {
        "$2 = $2"
    };
    let rows = sqlx::query(&format!(
        "SELECT t.status AS status, COUNT(*) AS n FROM test_results t \
         WHERE t.launch_id = $1 AND {filter} AND {LATEST} GROUP BY t.status"
    ))
    .bind(launch_id)
    .bind(manual.map_or(0, i64::from))
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

/// Deletes a launch's rows in one transaction (blobs are left to
/// `db::lifecycle::delete_launch`'s caller, which counts their references).
#[cfg(test)]
pub(crate) async fn delete_launch(db: &Db, id: Id) -> ServerResult<()> {
    let mut tx = db.write.begin().await?;
    delete_launch_rows(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Locks a launch for its deletion (inside the deleting transaction, before
/// anything is read or deleted); answers whether it exists. On PostgreSQL
/// the row is locked `FOR UPDATE`: a transaction writing results into the
/// launch holds it `FOR KEY SHARE` (`result_rows::hold_owners`), so the
/// deletion waits for those writes and then deletes them too, and a write
/// that comes later waits for the deletion and finds no launch. (SQLite has
/// one writer at a time.)
pub(crate) async fn lock_for_delete(conn: &mut AnyConnection, id: Id) -> ServerResult<bool> {
    let sql = if conn.backend_name() == "SQLite" {
        "SELECT id FROM launches WHERE id = $1"
    } else {
        "SELECT id FROM launches WHERE id = $1 FOR UPDATE"
    };
    Ok(sqlx::query(sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// The rows of a launch and everything in it, inside the caller's
/// transaction; deleting a launch that is gone deletes nothing.
pub(crate) async fn delete_launch_rows(conn: &mut AnyConnection, id: Id) -> ServerResult<()> {
    lock_for_delete(conn, id).await?;
    super::combine::unlink(&mut *conn, id).await?;
    super::ui_order::delete_launch_rows(&mut *conn, id).await?;
    let sub = "SELECT id FROM test_results WHERE launch_id = $1";
    for sql in [
        format!("DELETE FROM attachments WHERE test_result_id IN ({sub})"),
        format!("DELETE FROM fixtures WHERE test_result_id IN ({sub})"),
        "DELETE FROM launch_globals WHERE launch_id = $1".into(),
        "DELETE FROM manual_assignments WHERE launch_id = $1".into(),
        "DELETE FROM test_results WHERE launch_id = $1".into(),
        "DELETE FROM session_files WHERE session_id IN (SELECT id FROM sessions WHERE launch_id = $1)"
            .into(),
        "DELETE FROM sessions WHERE launch_id = $1".into(),
        "DELETE FROM job_runs WHERE launch_id = $1".into(),
        "DELETE FROM launch_refs WHERE launch_id = $1".into(),
        "DELETE FROM launches WHERE id = $1".into(),
    ] {
        sqlx::query(&sql).bind(id).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Named envs / categories for the bulk endpoints: create-or-get by external id.
pub(crate) async fn launch_refs(
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

/// Activity closer than this to the recorded one is not written again.
pub(crate) const TOUCH_GRANULARITY_MS: i64 = 1000;

/// Records activity on a launch (`modified_ms`, read by the idle closer), at
/// most once per [`TOUCH_GRANULARITY_MS`]; called inside the write's transaction.
pub(crate) async fn touch(conn: &mut AnyConnection, launch_id: Id) -> ServerResult<()> {
    let now = now_ms();
    sqlx::query("UPDATE launches SET modified_ms = $1 WHERE id = $2 AND modified_ms < $3")
        .bind(now)
        .bind(launch_id)
        .bind(now - TOUCH_GRANULARITY_MS)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Refuses to write into a closed launch (inside the write's transaction, so a
/// concurrent close either happens before, and the write is refused, or after).
pub(crate) async fn ensure_open(conn: &mut AnyConnection, launch_id: Id) -> ServerResult<()> {
    let closed: i64 = sqlx::query("SELECT closed FROM launches WHERE id = $1")
        .bind(launch_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ServerError::not_found("launch", launch_id))?
        .try_get("closed")?;
    if closed != 0 {
        return Err(ServerError::launch_closed(launch_id));
    }
    Ok(())
}

/// Declares how many job runs a launch expects (the latest declaration wins).
pub(crate) async fn set_expected_job_runs(db: &Db, launch_id: Id, n: i64) -> ServerResult<()> {
    sqlx::query("UPDATE launches SET expected_job_runs = $1, modified_ms = $2 WHERE id = $3")
        .bind(n)
        .bind(now_ms())
        .bind(launch_id)
        .execute(&db.write)
        .await?;
    Ok(())
}

/// Closes every open launch whose last activity is older than `idle`, in one
/// statement; returns their ids.
pub(crate) async fn close_idle(db: &Db, idle: Duration) -> ServerResult<Vec<Id>> {
    let now = now_ms();
    let cutoff = now - i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
    let rows = sqlx::query(
        "UPDATE launches SET closed = 1, closed_ms = $1, modified_ms = $1 \
         WHERE closed = 0 AND modified_ms < $2 RETURNING id",
    )
    .bind(now)
    .bind(cutoff)
    .fetch_all(&db.write)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<i64, _>("id")?))
        .collect()
}
