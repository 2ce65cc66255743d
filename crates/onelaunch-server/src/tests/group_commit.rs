//! Group commit (`db::group`): ingest writes that queue while the SQLite
//! writer is busy run as one transaction, and each request still gets its
//! own answer: the ones that worked are stored and acknowledged together,
//! the one that failed is refused alone and leaves nothing behind.

use std::sync::atomic::Ordering;
use std::time::Duration;

use onelaunch_api::{self as api, Id};

use crate::db::{self, results::SessionRow, Db};
use crate::error::ServerError;

async fn session(db: &Db, run_uid: &str) -> (Id, SessionRow) {
    super::job_run_session(db, 1, run_uid).await
}

fn batch(prefix: &str, n: usize) -> Vec<api::UploadTestResult> {
    (0..n)
        .map(|i| api::UploadTestResult {
            uuid: format!("{prefix}-{i}"),
            history_id: Some(format!("{prefix}-h{i}")),
            name: format!("{prefix} test {i}"),
            status: Some("passed".into()),
            ..Default::default()
        })
        .collect()
}

async fn total(db: &Db, launch: Id) -> i64 {
    db::results::list_results(db, launch, None, 0, 10)
        .await
        .unwrap()
        .1
}

/// A bootstrapped SQLite database in its own directory (kept while held).
async fn fresh_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
    let db = Db::connect(&url).await.unwrap();
    db::projects::bootstrap(&db, Some("group-test"))
        .await
        .unwrap();
    (dir, db)
}

/// Waits (without a time limit on the outcome, only on a hang) until `done`.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn writes_queued_behind_a_busy_writer_commit_together_and_fail_alone() {
    let (_dir, db) = fresh_db().await;
    let (open, open_session) = session(&db, "run-open").await;
    let (closed, closed_session) = session(&db, "run-closed").await;
    db::launches::set_launch_closed(&db, closed, true)
        .await
        .unwrap();
    let counts = || {
        db.groups
            .as_ref()
            .expect("SQLite has a group writer")
            .counts()
    };
    let groups_before = counts().groups.load(Ordering::Relaxed);

    // Something else holds the writer: the first write waits for it, the
    // next ones queue behind it.
    let held = db.write.acquire().await.unwrap();
    let upload = |session: &SessionRow, prefix: &str| {
        let (db, session, results) = (db.clone(), session.clone(), batch(prefix, 50));
        tokio::spawn(async move { crate::ingest::results_counted(&db, &session, results).await })
    };
    let taken = counts().taken.load(Ordering::Relaxed);
    let first = upload(&open_session, "first");
    until("the first write is taken", || {
        counts().taken.load(Ordering::Relaxed) == taken + 1
    })
    .await;
    let queued = counts().queued.load(Ordering::Relaxed);
    let second = upload(&open_session, "second");
    let refused = upload(&closed_session, "refused");
    let third = upload(&open_session, "third");
    let again = upload(&open_session, "first"); // a re-send of the first batch
    until("four writes queued", || {
        counts().queued.load(Ordering::Relaxed) == queued + 4
    })
    .await;
    assert_eq!(
        total(&db, open).await,
        0,
        "nothing before the writer is free"
    );
    drop(held);

    let (_, new) = first.await.unwrap().unwrap();
    assert_eq!(new, 50);
    for (task, expected) in [(second, 50), (third, 50), (again, 0)] {
        let (refs, new) = task.await.unwrap().unwrap();
        assert_eq!(refs.len(), 50);
        assert_eq!(new, expected);
    }
    match refused.await.unwrap() {
        Err(ServerError::LaunchClosed(id)) => assert_eq!(id, closed),
        other => panic!("a write into a closed launch: {other:?}"),
    }
    // One transaction: the four that queued while the first one's group
    // waited for the writer joined it.
    assert_eq!(counts().groups.load(Ordering::Relaxed), groups_before + 1);
    assert_eq!(total(&db, open).await, 150);
    assert_eq!(total(&db, closed).await, 0);
    let run = db::job_runs::get_job_run(&db, open_session.job_run_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.result_count, 150);
}

/// On SQLite the ids of a batch whose rows were all new are not read back
/// but counted from the table's last id: they must be the stored rows' ids,
/// also after a re-sent batch left a gap in the numbering (a row the
/// conflict clause skips still takes a number), and the test cases created
/// with them must point at them.
#[tokio::test]
async fn ids_answered_for_new_rows_are_the_stored_ones_after_gaps() {
    use sqlx::Row;
    let (_dir, db) = fresh_db().await;
    let (launch, session) = session(&db, "run-ids").await;
    let upload = |results| crate::ingest::results_counted(&db, &session, results);
    let (_, new) = upload(batch("a", 30)).await.unwrap();
    assert_eq!(new, 30);
    let (_, new) = upload(batch("a", 30)).await.unwrap();
    assert_eq!(new, 0, "a re-sent batch adds nothing (and leaves a gap)");
    // Known and new together: the ids are read back.
    let mut mixed = batch("a", 10);
    mixed.extend(batch("m", 10));
    let (mixed_refs, new) = upload(mixed).await.unwrap();
    assert_eq!(new, 10);
    // All new: the ids are counted.
    let (fresh_refs, new) = upload(batch("b", 40)).await.unwrap();
    assert_eq!(new, 40);
    for r in mixed_refs.iter().chain(&fresh_refs) {
        let stored: (String, Option<i64>) = {
            let row = sqlx::query(
                "SELECT r.uuid, c.last_result_id FROM test_results r \
                 LEFT JOIN test_cases c ON c.last_result_id = r.id WHERE r.id = $1",
            )
            .bind(r.id)
            .fetch_one(&db.read)
            .await
            .unwrap();
            (
                row.try_get("uuid").unwrap(),
                row.try_get("last_result_id").unwrap(),
            )
        };
        assert_eq!(stored.0, r.uuid, "result id {} holds another result", r.id);
        assert_eq!(
            stored.1,
            Some(r.id),
            "no test case points at result {}",
            r.id
        );
    }
    assert_eq!(total(&db, launch).await, 80);
}

/// A group's work runs on the writer's own thread, not as a task of the
/// runtime that serves requests: it is not queued behind their decoding at
/// each statement it hands to SQLite.
#[tokio::test]
async fn a_group_runs_on_the_writer_thread() {
    let (_dir, db) = fresh_db().await;
    let ran_on = db::group::grouped(&db, 1, |_conn| {
        Box::pin(async move { Ok(std::thread::current().name().map(str::to_string)) })
    })
    .await
    .unwrap();
    assert_eq!(ran_on.as_deref(), Some("onelaunch-writer"));
}

/// The savepoints of a group (and the statements that may fail halfway)
/// keep their journals in memory: written to a temporary file, every page a
/// batch changed was written once more next to the WAL.
#[tokio::test]
async fn a_groups_journals_stay_in_memory() {
    let (_dir, db) = fresh_db().await;
    let store: i64 = db::group::grouped(&db, 1, |conn| {
        Box::pin(async move {
            let row = sqlx::query("PRAGMA temp_store")
                .fetch_one(&mut *conn)
                .await?;
            Ok(sqlx::Row::try_get::<i64, _>(&row, 0)?)
        })
    })
    .await
    .unwrap();
    // 2 = MEMORY (0, the default, is a file past SQLite's spill size).
    assert_eq!(store, 2);
}
