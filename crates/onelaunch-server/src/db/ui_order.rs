//! The web UI's order of a launch's results (automated or manual, job run,
//! status, name: `ui_results`), kept out of the upload's path.
//!
//! On SQLite an upload does not touch `ui_results`. [`settle`] copies the
//! results above a mark (`ui_results_mark.through`) into it, sorted, many
//! uploads at a time: in the background when uploads pause, and every
//! [`SETTLE_AT`] results during a long one ([`super::settle::spawn`]).
//! An index kept on `test_results` in that order took a random insert per
//! result, and each group commit rewrote most of its pages (migration 0030,
//! docs/ingest-profile.md). Results are only inserted, and deleted with their
//! launch; their ids follow commit order (one writer, `AUTOINCREMENT`); so
//! every result up to the mark is in `ui_results`.
//!
//! A reader asks [`tail_from`] whether a launch's results are all at or below
//! the mark: then `ui_results` lists them in order (an index range). Else the
//! overview adds the results above the mark (`test_results`, an id range) to
//! those below it, a page merges them (sorted in the query) into its walk of
//! `ui_results`, and the settler is asked to settle now. A page never waits
//! for the writer.
//!
//! On PostgreSQL `ui_results` is a view of `test_results`, whose index keeps
//! the order (its sequence values do not follow commit order, so a mark could
//! skip a result): always complete, nothing to settle.

use onelaunch_api::Id;
use sqlx::AnyConnection;

use super::*;
use crate::error::ServerResult;

/// Results copied by one transaction of [`settle`] (by id): the writer is
/// held for about a second per 300,000.
const SETTLE_ROWS: i64 = 50_000;

/// Results stored since the last [`settle`] that start one without waiting
/// for uploads to pause.
pub(crate) const SETTLE_AT: usize = 100_000;

/// `None` when `ui_results` holds every result of launch `launch_id` (always
/// on PostgreSQL); else `Some(mark)`: the launch's results up to `mark` are in
/// `ui_results`, the newer ones only in `test_results`. Then the settler is
/// asked to settle now rather than when uploads pause, so that a page watched
/// during an upload reads a short tail.
pub(crate) async fn tail_from(db: &Db, launch_id: Id) -> ServerResult<Option<Id>> {
    if db.backend != Backend::Sqlite {
        return Ok(None);
    }
    // The mark first: every result up to it is in `ui_results` in any later
    // snapshot, so a reader that takes the rows up to it from there and the
    // newer ones from `test_results` counts each result once. A result
    // stored after these reads may be left off until the next read, as if
    // the page had been read just before it arrived.
    let mark = mark(&db.read).await?;
    let last =
        sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM test_results WHERE launch_id = $1")
            .bind(launch_id)
            .fetch_one(&db.read)
            .await?;
    if get_i64(&last, "m")? <= mark {
        return Ok(None);
    }
    db.settler.want_order();
    Ok(Some(mark))
}

/// The highest result id copied into `ui_results` (SQLite).
async fn mark<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(e: E) -> ServerResult<Id> {
    let r = sqlx::query("SELECT through FROM ui_results_mark WHERE id = 1")
        .fetch_optional(e)
        .await?;
    Ok(match r {
        Some(r) => get_i64(&r, "through")?,
        None => 0,
    })
}

/// Copies every result above the mark into `ui_results` (SQLite; nothing
/// on PostgreSQL). Returns how many it copied.
pub(crate) async fn settle(db: &Db) -> ServerResult<usize> {
    if db.backend != Backend::Sqlite {
        return Ok(0);
    }
    let _one_at_a_time = db.settler.order.begin().await;
    let mut copied = 0;
    loop {
        let mut tx = db.write.begin().await?;
        let n = settle_some(&mut tx).await?;
        tx.commit().await?;
        match n {
            Some(n) => copied += n,
            None => return Ok(copied),
        }
    }
}

/// Copies the results with ids in (mark, mark + [`SETTLE_ROWS`]], in the
/// order `ui_results` keeps, and moves the mark to the end of that range.
/// `None` when no result is above the mark.
async fn settle_some(conn: &mut AnyConnection) -> ServerResult<Option<usize>> {
    let from = mark(&mut *conn).await?;
    let last = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM test_results")
        .fetch_one(&mut *conn)
        .await?;
    let last = get_i64(&last, "m")?;
    if last <= from {
        return Ok(None);
    }
    let to = last.min(from.saturating_add(SETTLE_ROWS));
    let copied = sqlx::query(
        "INSERT INTO ui_results (launch_id, manual, job_run_id, status, name, result_id, \
         start_ms, stop_ms, created_ms, full_name, test_key) \
         SELECT launch_id, manual, job_run_id, status, name, id, start_ms, stop_ms, created_ms, \
         full_name, test_key \
         FROM test_results WHERE id > $1 AND id <= $2 \
         ORDER BY launch_id, manual, job_run_id, status, name, id",
    )
    .bind(from)
    .bind(to)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query("INSERT INTO ui_results_mark (id, through) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET through = excluded.through")
        .bind(to)
        .execute(&mut *conn)
        .await?;
    Ok(Some(copied as usize))
}

/// Deletes a launch's rows of `ui_results`, in the caller's transaction
/// (SQLite; on PostgreSQL the view follows `test_results`).
pub(crate) async fn delete_launch_rows(
    conn: &mut AnyConnection,
    launch_id: Id,
) -> ServerResult<()> {
    if conn.backend_name() != "SQLite" {
        return Ok(());
    }
    sqlx::query("DELETE FROM ui_results WHERE launch_id = $1")
        .bind(launch_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
