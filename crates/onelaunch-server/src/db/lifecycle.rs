//! Data lifecycle in the database: what a launch deletion removes, which
//! blobs rows still reference, retention settings per project (migration
//! 0017) and the lease that lets one replica at a time run retention.

use std::collections::BTreeSet;

use onelaunch_api::Id;
use sqlx::Row;

use super::*;
use crate::error::ServerResult;

/// Every column that holds a blob's sha256.
const BLOB_REFS: &[(&str, &str)] = &[
    ("attachments", "sha256"),
    ("session_files", "sha256"),
    ("launch_globals", "sha256"),
];

/// What one launch deletion removed from the database.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeletedRows {
    /// False when the launch was already gone (deletion is idempotent).
    pub existed: bool,
    pub results: i64,
    pub attachments: i64,
    /// Blobs the removed rows referenced: candidates for removal.
    pub blobs: BTreeSet<String>,
}

/// Deletes a launch and everything in it in one transaction; answers what
/// went and which blobs the removed rows pointed at.
pub(crate) async fn delete_launch(db: &Db, id: Id) -> ServerResult<DeletedRows> {
    let mut tx = db.write.begin().await?;
    let mut out = DeletedRows {
        existed: super::launches::lock_for_delete(&mut tx, id).await?,
        ..Default::default()
    };
    let sub = "SELECT id FROM test_results WHERE launch_id = $1";
    let r = sqlx::query("SELECT COUNT(*) AS n FROM test_results WHERE launch_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    out.results = get_i64(&r, "n")?;
    let r = sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM attachments WHERE test_result_id IN ({sub})"
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    out.attachments = get_i64(&r, "n")?;
    for sql in [
        format!("SELECT DISTINCT sha256 FROM attachments WHERE test_result_id IN ({sub}) AND sha256 IS NOT NULL"),
        "SELECT DISTINCT sha256 FROM session_files WHERE session_id IN (SELECT id FROM sessions WHERE launch_id = $1)".into(),
        "SELECT DISTINCT sha256 FROM launch_globals WHERE launch_id = $1 AND sha256 IS NOT NULL".into(),
    ] {
        for r in sqlx::query(&sql).bind(id).fetch_all(&mut *tx).await? {
            out.blobs.insert(r.try_get::<String, _>("sha256")?);
        }
    }
    super::launches::delete_launch_rows(&mut tx, id).await?;
    tx.commit().await?;
    Ok(out)
}

/// Whether any row references the blob (asked after the deleting
/// transaction committed, and again just before its file goes).
pub(crate) async fn blob_referenced(db: &Db, sha: &str) -> ServerResult<bool> {
    let mut conn = db.write.acquire().await?;
    referenced_on(&mut conn, sha).await
}

/// [`blob_referenced`] on a connection (inside a transaction).
pub(crate) async fn referenced_on(conn: &mut sqlx::AnyConnection, sha: &str) -> ServerResult<bool> {
    for (table, col) in BLOB_REFS {
        let sql = format!("SELECT 1 AS one FROM {table} WHERE {col} = $1 LIMIT 1");
        if sqlx::query(&sql)
            .bind(sha)
            .fetch_optional(&mut *conn)
            .await?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Every blob some row references.
pub(crate) async fn referenced_blobs(db: &Db) -> ServerResult<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for (table, col) in BLOB_REFS {
        let sql = format!("SELECT DISTINCT {col} AS sha FROM {table} WHERE {col} IS NOT NULL");
        for r in sqlx::query(&sql).fetch_all(&db.read).await? {
            out.insert(r.try_get::<String, _>("sha")?);
        }
    }
    Ok(out)
}

/// Retention of a project: keep launches at most this many days / only the
/// newest this many (`None`: no bound).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retention {
    pub days: Option<i64>,
    pub launches: Option<i64>,
}

pub(crate) async fn retention(db: &Db, project: Id) -> ServerResult<Retention> {
    let r = sqlx::query("SELECT retain_days, retain_launches FROM projects WHERE id = $1")
        .bind(project)
        .fetch_one(&db.read)
        .await?;
    Ok(Retention {
        days: opt_i64(&r, "retain_days"),
        launches: opt_i64(&r, "retain_launches"),
    })
}

pub(crate) async fn set_retention(db: &Db, project: Id, r: Retention) -> ServerResult<()> {
    sqlx::query("UPDATE projects SET retain_days = $1, retain_launches = $2 WHERE id = $3")
        .bind(r.days)
        .bind(r.launches)
        .bind(project)
        .execute(&db.write)
        .await?;
    Ok(())
}

/// Closed launches retention would delete, newest first per project: older
/// than `days` (by creation) or beyond the project's newest `launches`
/// launches (open ones count towards the newest). Open launches never.
pub(crate) async fn retention_candidates(db: &Db, now_ms: i64) -> ServerResult<Vec<Id>> {
    let projects = sqlx::query(
        "SELECT id, retain_days, retain_launches FROM projects \
         WHERE retain_days IS NOT NULL OR retain_launches IS NOT NULL ORDER BY id",
    )
    .fetch_all(&db.read)
    .await?;
    let mut out = Vec::new();
    for p in projects {
        let days = opt_i64(&p, "retain_days");
        let keep = opt_i64(&p, "retain_launches");
        let rows = sqlx::query(
            "SELECT id, closed, created_ms FROM launches WHERE project_id = $1 \
             ORDER BY created_ms DESC, id DESC",
        )
        .bind(get_i64(&p, "id")?)
        .fetch_all(&db.read)
        .await?;
        let cutoff = days.map(|d| now_ms - d.saturating_mul(86_400_000));
        for (i, r) in rows.iter().enumerate() {
            let old = cutoff.is_some_and(|c| get_i64(r, "created_ms").is_ok_and(|t| t < c));
            let beyond = keep.is_some_and(|k| i as i64 >= k);
            if (old || beyond) && get_i64(r, "closed")? != 0 {
                out.push(get_i64(r, "id")?);
            }
        }
    }
    Ok(out)
}

/// Takes (or renews) the named lease for `holder` until `until_ms`; false
/// when another holder's lease has not expired. The row is created expired
/// the first time; taking it is one conditional UPDATE, so two replicas
/// asking at once cannot both win.
pub(crate) async fn take_lease(
    db: &Db,
    name: &str,
    holder: &str,
    now_ms: i64,
    until_ms: i64,
) -> ServerResult<bool> {
    sqlx::query(
        "INSERT INTO lifecycle_leases (name, holder, until_ms) VALUES ($1, '', 0) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(&db.write)
    .await?;
    let done = sqlx::query(
        "UPDATE lifecycle_leases SET holder = $1, until_ms = $2 \
         WHERE name = $3 AND (until_ms < $4 OR holder = $1)",
    )
    .bind(holder)
    .bind(until_ms)
    .bind(name)
    .bind(now_ms)
    .execute(&db.write)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Job runs and sessions of a launch that are copies (a combined launch's,
/// `copied_from`): nothing runs in them, so they never make it busy.
pub(crate) async fn copied_parts(
    db: &Db,
    launch: Id,
) -> ServerResult<(BTreeSet<Id>, BTreeSet<Id>)> {
    let ids = |table: &'static str| async move {
        let sql =
            format!("SELECT id FROM {table} WHERE launch_id = $1 AND copied_from IS NOT NULL");
        let rows = sqlx::query(&sql).bind(launch).fetch_all(&db.read).await?;
        rows.iter()
            .map(|r| get_i64(r, "id"))
            .collect::<ServerResult<BTreeSet<Id>>>()
    };
    Ok((ids("job_runs").await?, ids("sessions").await?))
}
