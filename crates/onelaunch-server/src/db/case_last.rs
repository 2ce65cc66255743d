//! What a test case's latest attempt says: its status, start, result and the
//! job that ran it (`test_case_last`), kept apart from the case row.
//!
//! An upload (and a manual result) records one attempt per case, in its own
//! transaction ([`note_attempts`]). On PostgreSQL, for a case the same
//! transaction created, and for a manual result, it is written at once, merged over the stored row
//! ([`MERGE`]). On SQLite an attempt at a known case is queued instead
//! (`test_case_pending`: rows added at the end of one b-tree), and
//! [`settle`] folds the queue into `test_case_last` in case order, many
//! uploads at a time, so that each page of that table is written once per
//! fold rather than once per commit: a next run of a suite sends its cases
//! in no order (its result files are named by uuid), and a commit writes
//! every page it changed whole, so updating them where they were stored
//! wrote most of the case table with every commit (migration 0029,
//! docs/ingest-profile.md). PostgreSQL logs the rows it changes, not their
//! pages, so there a queue would only add work.
//!
//! Readers of a case's last status or default executor settle first
//! ([`settled`]: one query when the queue is empty), so they see every
//! attempt stored before they asked. The server also settles in the
//! background ([`super::settle::spawn`]): when uploads pause, or when
//! [`SETTLE_AT`] attempts are queued.
//!
//! Merging is exact whatever the order: a case takes the status of its
//! attempt with the latest `(start, result id)`, and its job follows the
//! upload order (the last job that uploaded it).

use std::collections::BTreeMap;

use onelaunch_api::Id;
use sqlx::AnyConnection;

use super::*;
use crate::error::ServerResult;

/// Queued attempts that start a fold without waiting for uploads to pause.
pub(crate) const SETTLE_AT: usize = 20_000;
/// Queue rows taken by one statement of a fold.
const FOLD_ROWS: usize = 10_000;
/// Rows per multi-row statement.
const ROWS: usize = 100;

/// One attempt at a test case, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt<'a> {
    pub(crate) case_id: Id,
    pub(crate) status: &'a str,
    pub(crate) start: i64,
    pub(crate) result_id: Id,
    pub(crate) job_id: Option<Id>,
}

/// Records `attempts` in the caller's transaction: those at a case with an
/// id up to `queue_through` are queued, the others written at once. An
/// upload passes [`super::test_cases::UpsertedCases::known_through`]: on
/// SQLite its known cases are queued and the ones it created written; on
/// PostgreSQL (`None`) everything is written.
pub(crate) async fn note_attempts(
    conn: &mut AnyConnection,
    attempts: &[Attempt<'_>],
    queue_through: Option<Id>,
) -> ServerResult<()> {
    const COLS: usize = 6;
    let now = now_ms();
    let (queued, written): (Vec<&Attempt>, Vec<&Attempt>) = attempts
        .iter()
        .partition(|a| queue_through.is_some_and(|q| a.case_id <= q));
    if !written.is_empty() {
        let rows = folded(written.iter().map(|a| {
            let last = Last {
                status: Some(a.status.to_string()),
                start: a.start,
                result_id: a.result_id,
                job_id: a.job_id,
                modified_ms: now,
            };
            (a.case_id, last)
        }));
        store(conn, &rows).await?;
    }
    for chunk in queued.chunks(ROWS) {
        let sql = shaped(conn, "note_attempts", chunk.len(), |mut p, n| {
            format!(
                "{} INTO test_case_pending (test_case_id, status, start_ms, result_id, job_id, at_ms) \
                 VALUES {}",
                insert_or_fail(p.sqlite),
                p.rows(n, COLS)
            )
        });
        let mut q = with_room(&sql, chunk.len() * COLS);
        for a in chunk {
            q = q
                .bind(a.case_id)
                .bind(a.status)
                .bind(a.start)
                .bind(a.result_id)
                .bind(a.job_id)
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A case's last attempt, as folded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Last {
    status: Option<String>,
    start: i64,
    result_id: Id,
    job_id: Option<Id>,
    modified_ms: i64,
}

impl Last {
    /// Folds a later attempt into this one.
    fn then(&mut self, next: Last) {
        self.job_id = next.job_id.or(self.job_id);
        self.modified_ms = self.modified_ms.max(next.modified_ms);
        if (next.start, next.result_id) >= (self.start, self.result_id) {
            self.status = next.status;
            self.start = next.start;
            self.result_id = next.result_id;
        }
    }
}

/// Settles when attempts are queued: what readers of a case's last status
/// call first.
pub(crate) async fn settled(db: &Db) -> ServerResult<()> {
    if db.backend != Backend::Sqlite {
        return Ok(());
    }
    let queued = sqlx::query("SELECT id FROM test_case_pending LIMIT 1")
        .fetch_optional(&db.read)
        .await?;
    if queued.is_some() {
        settle(db).await?;
    }
    Ok(())
}

/// Folds every queued attempt into `test_case_last`. Returns how many it
/// folded (none on PostgreSQL, where nothing is queued).
pub(crate) async fn settle(db: &Db) -> ServerResult<usize> {
    if db.backend != Backend::Sqlite {
        return Ok(0);
    }
    let _one_at_a_time = db.settler.cases.begin().await;
    let mut folded = 0;
    loop {
        let mut tx = db.write.begin().await?;
        let n = fold_some(&mut tx).await?;
        tx.commit().await?;
        folded += n;
        if n < FOLD_ROWS {
            return Ok(folded);
        }
    }
}

/// Takes up to [`FOLD_ROWS`] queued attempts off the queue and folds them,
/// in one statement: the attempts in case order (then queue order), each
/// merged over the row before it by [`MERGE`] (SQLite applies an upsert row
/// by row, so a case's later attempts see its earlier ones). The queue is
/// this transaction's alone (one writer), so what it folded is the ids up to
/// a bound.
async fn fold_some(conn: &mut AnyConnection) -> ServerResult<usize> {
    let bound = sqlx::query(&format!(
        "SELECT MAX(id) AS m FROM (SELECT id FROM test_case_pending ORDER BY id LIMIT {FOLD_ROWS})"
    ))
    .fetch_one(&mut *conn)
    .await?;
    let Some(bound) = opt_i64(&bound, "m") else {
        return Ok(0);
    };
    sqlx::query(&format!(
        "INSERT INTO test_case_last (test_case_id, status, start_ms, result_id, job_id, modified_ms) \
         SELECT test_case_id, status, start_ms, result_id, job_id, at_ms FROM test_case_pending \
         WHERE id <= $1 ORDER BY test_case_id, id {MERGE}"
    ))
    .bind(bound)
    .execute(&mut *conn)
    .await?;
    let taken = sqlx::query("DELETE FROM test_case_pending WHERE id <= $1")
        .bind(bound)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(taken as usize)
}

/// Attempts (in the order they were made) folded into one per case, in case
/// order (a statement of [`store`] may hold each case once).
fn folded(attempts: impl Iterator<Item = (Id, Last)>) -> Vec<(Id, Last)> {
    let mut cases: BTreeMap<Id, Last> = BTreeMap::new();
    for (case, last) in attempts {
        match cases.get_mut(&case) {
            Some(l) => l.then(last),
            None => {
                cases.insert(case, last);
            }
        }
    }
    cases.into_iter().collect()
}

/// Whether an attempt (`excluded`) is newer than the stored row: its
/// `(start, result id)` is not below the row's.
macro_rules! newer {
    () => {
        "(COALESCE(test_case_last.start_ms, 0), COALESCE(test_case_last.result_id, 0)) \
         <= (excluded.start_ms, excluded.result_id)"
    };
}

/// The conflict arm that merges an attempt (`excluded`) over the stored
/// row, by the same rule as [`Last::then`].
const MERGE: &str = concat!(
    "ON CONFLICT (test_case_id) DO UPDATE SET status = CASE WHEN ",
    newer!(),
    " THEN excluded.status ELSE test_case_last.status END, result_id = CASE WHEN ",
    newer!(),
    " THEN excluded.result_id ELSE test_case_last.result_id END, start_ms = CASE WHEN ",
    newer!(),
    " THEN excluded.start_ms ELSE test_case_last.start_ms END, \
     job_id = COALESCE(excluded.job_id, test_case_last.job_id), \
     modified_ms = CASE WHEN excluded.modified_ms > test_case_last.modified_ms \
     THEN excluded.modified_ms ELSE test_case_last.modified_ms END"
);

/// Writes folded attempts (one per case, in case order) over what
/// `test_case_last` holds ([`MERGE`]).
async fn store(conn: &mut AnyConnection, cases: &[(Id, Last)]) -> ServerResult<()> {
    const COLS: usize = 6;
    for chunk in cases.chunks(ROWS) {
        let sql = shaped(conn, "store_case_last", chunk.len(), |mut p, n| {
            format!(
                "INSERT INTO test_case_last (test_case_id, status, start_ms, result_id, job_id, modified_ms) \
                 VALUES {} {MERGE}",
                p.rows(n, COLS)
            )
        });
        let mut q = with_room(&sql, chunk.len() * COLS);
        for (case, l) in chunk {
            q = q
                .bind(*case)
                .bind(l.status.as_deref())
                .bind(l.start)
                .bind(l.result_id)
                .bind(l.job_id)
                .bind(l.modified_ms);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(status: &str, start: i64, result_id: Id, job_id: Option<Id>, at: i64) -> Last {
        Last {
            status: Some(status.into()),
            start,
            result_id,
            job_id,
            modified_ms: at,
        }
    }

    #[test]
    fn the_latest_start_wins_the_status_and_the_last_upload_the_job() {
        let mut l = last("passed", 10, 1, Some(7), 100);
        // An older attempt, uploaded later by another job: the status stays,
        // the job moves.
        l.then(last("failed", 5, 2, Some(8), 101));
        assert_eq!(l, last("passed", 10, 1, Some(8), 101));
        // A manual result (no job), newer: the status moves, the job stays.
        l.then(last("broken", 20, 3, None, 99));
        assert_eq!(l, last("broken", 20, 3, Some(8), 101));
        // The same start: the later result wins.
        l.then(last("skipped", 20, 4, None, 102));
        assert_eq!(l, last("skipped", 20, 4, Some(8), 102));
    }
}
