//! Upload sessions as uploads in flight (migration 0009): a tracked session
//! is open (`closed_ms` NULL) until its client closes it; `last_seen_ms` is
//! its last activity. Rows are created in `results.rs` (`create_session`).

use onelaunch_api::{self as api, Id};
use sqlx::{AnyConnection, Row};

use super::*;
use crate::error::ServerResult;

/// A session received something: its last activity moves forward (at most
/// one write a second).
pub(crate) async fn session_seen(conn: &mut AnyConnection, id: Id) -> ServerResult<()> {
    let now = now_ms();
    sqlx::query(
        "UPDATE sessions SET last_seen_ms = $1 WHERE id = $2 \
         AND (last_seen_ms IS NULL OR last_seen_ms < $3)",
    )
    .bind(now)
    .bind(id)
    .bind(now - 1000)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Closes a session (idempotent); true when this call closed it.
pub(crate) async fn close_session(conn: &mut AnyConnection, id: Id) -> ServerResult<bool> {
    let now = now_ms();
    let done = sqlx::query(
        "UPDATE sessions SET closed_ms = $1, last_seen_ms = $1 WHERE id = $2 AND closed_ms IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Open sessions of a job run (read from the writer: a close just made counts).
pub(crate) async fn open_sessions_of_job_run(
    conn: &mut AnyConnection,
    job_run_id: Id,
) -> ServerResult<i64> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM sessions WHERE job_run_id = $1 AND closed_ms IS NULL",
    )
    .bind(job_run_id)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?)
}

/// Most open sessions of a launch listed.
pub(crate) const MAX_OPEN_LISTED: i64 = 200;

/// The open sessions of a launch, oldest first (at most [`MAX_OPEN_LISTED`]).
pub(crate) async fn launch_open_sessions(
    db: &Db,
    launch_id: Id,
) -> ServerResult<Vec<api::OpenSession>> {
    let rows = sqlx::query(
        "SELECT s.id AS id, s.job_run_id AS job_run_id, s.ci_type AS ci_type, \
         s.ci_job_name AS ci_job_name, s.ci_run_name AS ci_run_name, s.ci_run_url AS ci_run_url, \
         COALESCE(s.last_seen_ms, s.created_ms) AS last_activity, \
         (SELECT COUNT(*) FROM test_results t WHERE t.session_id = s.id) AS results \
         FROM sessions s WHERE s.launch_id = $1 AND s.closed_ms IS NULL ORDER BY s.id LIMIT $2",
    )
    .bind(launch_id)
    .bind(MAX_OPEN_LISTED)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            let ci = api::SessionCi {
                kind: opt_str(r, "ci_type"),
                job_name: opt_str(r, "ci_job_name"),
                run_name: opt_str(r, "ci_run_name"),
                run_url: opt_str(r, "ci_run_url"),
            };
            Ok(api::OpenSession {
                id: get_i64(r, "id")?,
                job_run_id: opt_i64(r, "job_run_id"),
                ci: (ci != api::SessionCi::default()).then_some(ci),
                results: get_i64(r, "results")?,
                last_activity: get_i64(r, "last_activity")?,
            })
        })
        .collect()
}
