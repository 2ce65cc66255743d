//! Group commit (`db::group`): ingest writes that queue while the SQLite
//! writer is busy run as one transaction, and each request still gets its
//! own answer: the ones that worked are stored and acknowledged together,
//! the one that failed is refused alone and leaves nothing behind.

use std::sync::atomic::Ordering;
use std::time::Duration;

use onelaunch_api::{self as api, Id};

use super::until;
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

/// The group writer's counts.
fn counts(db: &Db) -> &db::group::Counts {
    db.groups
        .as_ref()
        .expect("SQLite has a group writer")
        .counts()
}

/// The one column of the one row `sql` reads for `id`.
async fn read_one<T>(db: &Db, sql: &str, id: Id) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    let row = sqlx::query(sql).bind(id).fetch_one(&db.read).await.unwrap();
    sqlx::Row::try_get(&row, 0).unwrap()
}

/// A job run session in an open launch and one in a closed launch, where
/// every write fails.
async fn open_and_closed(db: &Db) -> ((Id, SessionRow), (Id, SessionRow)) {
    let open = session(db, "run-open").await;
    let closed = session(db, "run-closed").await;
    db::launches::set_launch_closed(db, closed.0, true)
        .await
        .unwrap();
    (open, closed)
}

#[tokio::test]
async fn writes_queued_behind_a_busy_writer_commit_together_and_fail_alone() {
    let (_dir, db) = fresh_db().await;
    let ((open, open_session), (closed, closed_session)) = open_and_closed(&db).await;
    let groups_before = counts(&db).groups.load(Ordering::Relaxed);

    // Something else holds the writer: the first write waits for it, the
    // next ones queue behind it.
    let held = db.write.acquire().await.unwrap();
    let upload = |session: &SessionRow, prefix: &str| {
        let (db, session, results) = (db.clone(), session.clone(), batch(prefix, 50));
        tokio::spawn(async move { crate::ingest::results_counted(&db, &session, results).await })
    };
    let taken = counts(&db).taken.load(Ordering::Relaxed);
    let first = upload(&open_session, "first");
    until("the first write is taken", || {
        counts(&db).taken.load(Ordering::Relaxed) == taken + 1
    })
    .await;
    let queued = counts(&db).queued.load(Ordering::Relaxed);
    let second = upload(&open_session, "second");
    let refused = upload(&closed_session, "refused");
    let third = upload(&open_session, "third");
    let again = upload(&open_session, "first"); // a re-send of the first batch
    until("four writes queued", || {
        counts(&db).queued.load(Ordering::Relaxed) == queued + 4
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
    // One group: the four that queued while the first one's group waited
    // for the writer joined it. The refused one failed with the first two
    // already written, without savepoints: they were rolled back and run
    // again (which the counts of new results above would show if the first
    // run's rows had stayed).
    assert_eq!(
        counts(&db).groups.load(Ordering::Relaxed),
        groups_before + 1
    );
    assert_eq!(counts(&db).replayed.load(Ordering::Relaxed), 1);
    assert_eq!(total(&db, open).await, 150);
    assert_eq!(total(&db, closed).await, 0);
    let run = db::job_runs::get_job_run(&db, open_session.job_run_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.result_count, 150);
}

/// Uploads `batches` (session, uuid prefix, size) queued behind a held
/// writer, so that they run as one group, in this order; their answers.
async fn one_group(
    db: &Db,
    batches: Vec<(SessionRow, &'static str, usize)>,
) -> Vec<Result<(Vec<api::ResultRef>, usize), ServerError>> {
    let held = db.write.acquire().await.unwrap();
    let mut tasks = Vec::new();
    for (session, prefix, n) in batches {
        let (taken, queued) = (
            counts(db).taken.load(Ordering::Relaxed),
            counts(db).queued.load(Ordering::Relaxed),
        );
        let (db2, results) = (db.clone(), batch(prefix, n));
        tasks.push(tokio::spawn(async move {
            crate::ingest::results_counted(&db2, &session, results).await
        }));
        if tasks.len() == 1 {
            until("the first write is taken", || {
                counts(db).taken.load(Ordering::Relaxed) == taken + 1
            })
            .await;
        } else {
            until("a write queued", || {
                counts(db).queued.load(Ordering::Relaxed) == queued + 1
            })
            .await;
        }
    }
    drop(held);
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

/// A group whose members all work runs them without savepoints; once one
/// fails, the others are run again, and for a while after, groups give each
/// member a savepoint, so a member that fails costs the others nothing more.
#[tokio::test]
async fn a_failure_replays_its_group_once_then_savepoints_take_over() {
    let (_dir, db) = fresh_db().await;
    let ((open, s_open), (closed, s_closed)) = open_and_closed(&db).await;
    let replayed = || counts(&db).replayed.load(Ordering::Relaxed);
    let new_counts = |answers: Vec<Result<(Vec<api::ResultRef>, usize), ServerError>>| {
        answers
            .into_iter()
            .map(|a| a.map(|(_, new)| new).map_err(|e| e.to_string()))
            .collect::<Vec<_>>()
    };

    let clean = one_group(
        &db,
        vec![(s_open.clone(), "a", 20), (s_open.clone(), "b", 20)],
    )
    .await;
    assert_eq!(new_counts(clean), [Ok(20), Ok(20)]);
    assert_eq!(replayed(), 0, "a group that does not fail runs once");

    let failing = vec![
        (s_open.clone(), "c", 20),
        (s_closed.clone(), "x", 20),
        (s_open.clone(), "d", 20),
    ];
    let answers = new_counts(one_group(&db, failing.clone()).await);
    assert_eq!(answers[0], Ok(20));
    assert!(answers[1].is_err(), "{:?}", answers[1]);
    assert_eq!(answers[2], Ok(20));
    assert_eq!(replayed(), 1, "the failure rolled its group back once");

    // Within SAVEPOINTS_AFTER_A_FAILURE: each member in a savepoint.
    let failing = vec![
        (s_open.clone(), "e", 20),
        (s_closed.clone(), "y", 20),
        (s_open.clone(), "f", 20),
    ];
    let answers = new_counts(one_group(&db, failing).await);
    assert_eq!(answers[0], Ok(20));
    assert!(answers[1].is_err(), "{:?}", answers[1]);
    assert_eq!(answers[2], Ok(20));
    assert_eq!(replayed(), 1, "no replay while savepoints are on");

    assert_eq!(total(&db, open).await, 120);
    assert_eq!(total(&db, closed).await, 0);
}

/// A member that fails after it wrote, without a savepoint, leaves nothing
/// behind: its group is rolled back, and the others are stored once.
#[tokio::test]
async fn a_member_failing_halfway_leaves_nothing_and_the_others_are_stored_once() {
    let (_dir, db) = fresh_db().await;
    let (open, s_open) = session(&db, "run-open").await;
    let held = db.write.acquire().await.unwrap();
    let upload = |prefix: &'static str| {
        let (db, session) = (db.clone(), s_open.clone());
        tokio::spawn(async move {
            crate::ingest::results_counted(&db, &session, batch(prefix, 30)).await
        })
    };
    let first = upload("a");
    until("the first write is taken", || {
        counts(&db).taken.load(Ordering::Relaxed) == 1
    })
    .await;
    let halfway = {
        let db = db.clone();
        tokio::spawn(async move {
            db::group::grouped(&db, 1, move |conn| {
                Box::pin(async move {
                    sqlx::query("UPDATE launches SET name = 'half-written' WHERE id = $1")
                        .bind(open)
                        .execute(&mut *conn)
                        .await?;
                    Err::<(), _>(ServerError::bad("failed after a write"))
                })
            })
            .await
        })
    };
    until("the failing write queued", || {
        counts(&db).queued.load(Ordering::Relaxed) == 2
    })
    .await;
    let last = upload("b");
    until("the last write queued", || {
        counts(&db).queued.load(Ordering::Relaxed) == 3
    })
    .await;
    drop(held);
    assert_eq!(first.await.unwrap().unwrap().1, 30);
    assert!(halfway.await.unwrap().is_err());
    assert_eq!(last.await.unwrap().unwrap().1, 30);
    assert_eq!(counts(&db).replayed.load(Ordering::Relaxed), 1);
    let name: String = read_one(&db, "SELECT name FROM launches WHERE id = $1", open).await;
    assert_ne!(name, "half-written");
    assert_eq!(total(&db, open).await, 60);
}

/// A replayed member writes again what the rolled-back run had written and
/// remembered as done for the second ([`db::Recent`]): the session's last
/// sighting and the launch's activity time.
#[tokio::test]
async fn a_replayed_write_moves_the_times_its_rolled_back_run_moved() {
    let (_dir, db) = fresh_db().await;
    let ((open, s_open), (_, s_closed)) = open_and_closed(&db).await;
    sqlx::query("UPDATE sessions SET last_seen_ms = 0 WHERE id = $1")
        .bind(s_open.id)
        .execute(&db.write)
        .await
        .unwrap();
    sqlx::query("UPDATE launches SET modified_ms = 0 WHERE id = $1")
        .bind(open)
        .execute(&db.write)
        .await
        .unwrap();
    let answers = one_group(&db, vec![(s_open.clone(), "a", 5), (s_closed, "x", 5)]).await;
    assert_eq!(answers[0].as_ref().map(|(_, new)| *new).ok(), Some(5));
    assert!(answers[1].is_err());
    let seen: Option<i64> = read_one(
        &db,
        "SELECT last_seen_ms FROM sessions WHERE id = $1",
        s_open.id,
    )
    .await;
    assert!(
        seen.unwrap_or(0) > 0,
        "the session's last sighting: {seen:?}"
    );
    let modified: i64 = read_one(&db, "SELECT modified_ms FROM launches WHERE id = $1", open).await;
    assert!(modified > 0, "the launch's activity time: {modified}");
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
    db::case_last::settle(&db).await.unwrap();
    for r in mixed_refs.iter().chain(&fresh_refs) {
        let stored: (String, Option<i64>) = {
            let row = sqlx::query(
                "SELECT r.uuid, c.result_id AS last_result_id FROM test_results r \
                 LEFT JOIN test_case_last c ON c.result_id = r.id WHERE r.id = $1",
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

/// What a member's work holds (a batch of decoded results) is freed by the
/// member's own task once answered, not by the writer, whose thread is the
/// serial part of an upload.
#[tokio::test]
async fn what_a_member_holds_is_freed_off_the_writer_thread() {
    use std::sync::{Arc, Mutex};
    /// Records the name of the thread that frees it.
    struct Held(Arc<Mutex<Option<Option<String>>>>);
    impl Drop for Held {
        fn drop(&mut self) {
            let name = std::thread::current().name().map(str::to_string);
            *self.0.lock().unwrap() = Some(name);
        }
    }
    let (_dir, db) = fresh_db().await;
    let freed_on = Arc::new(Mutex::new(None));
    let held = Held(freed_on.clone());
    let ran_on = db::group::grouped(&db, 1, move |_conn| {
        let _ = &held;
        Box::pin(async move { Ok(std::thread::current().name().map(str::to_string)) })
    })
    .await
    .unwrap();
    assert_eq!(ran_on.as_deref(), Some("onelaunch-writer"));
    let freed_on = freed_on.lock().unwrap().clone();
    let freed_on = freed_on.expect("what the work held was not freed");
    assert_ne!(freed_on.as_deref(), Some("onelaunch-writer"));
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

/// Result batches in decoded form are bounded (`ingest::limits::Room::decoding`):
/// while the whole budget is held a batch waits, undecoded (twenty job runs
/// whose batches arrived at once held every one of them decoded, waiting for
/// the writer); once there is room it is stored.
#[tokio::test]
async fn a_result_batch_waits_for_room_to_be_decoded() {
    let app = super::TestApp::new().await;
    let (_, session) = session(&app.state.db, "run-budget").await;
    let body = serde_json::json!({
        "testSessionId": session.id,
        "results": [{"uuid": "budget-1", "name": "budget", "status": "passed"}],
    });
    let all = app.hold_decoding().await;
    let upload = app.post("/api/upload/test-result", super::ADMIN, &body);
    let waited = tokio::time::timeout(Duration::from_millis(300), upload).await;
    assert!(waited.is_err(), "answered while the budget was held");
    assert_eq!(total(&app.state.db, session.launch_id).await, 0);
    drop(all);
    app.post("/api/upload/test-result", super::ADMIN, &body)
        .await
        .expect(200);
    assert_eq!(total(&app.state.db, session.launch_id).await, 1);
}

/// The WAL is copied back into the database beside the writer
/// (`db::checkpoint`): after a write, the checkpointer copies every frame
/// back, though the WAL holds far less than the writer's own threshold; and
/// the next write then starts the WAL over, so a WAL the checkpointer keeps
/// copied does not grow.
#[tokio::test]
async fn the_wal_is_copied_back_beside_the_writer_and_starts_over() {
    let (_dir, db) = fresh_db().await;
    let (_, session) = session(&db, "run-wal").await;
    let counts = || {
        db.checkpoints
            .as_ref()
            .expect("SQLite has a checkpointer")
            .counts()
    };
    // The WAL's size at a checkpoint that began after `results` were
    // written, once it copied every frame back.
    let upload_and_copy = async |results| -> i64 {
        crate::ingest::results_counted(&db, &session, results)
            .await
            .unwrap();
        // The writer has come back (the pool has one connection).
        drop(db.write.acquire().await.unwrap());
        let written = counts().commits.load(Ordering::Relaxed);
        until(
            "a checkpoint after the write copied the whole WAL back",
            || {
                let c = counts();
                c.covered.load(Ordering::Relaxed) >= written
                    && c.last_frames.load(Ordering::Relaxed) > 0
                    && c.last_copied.load(Ordering::Relaxed)
                        == c.last_frames.load(Ordering::Relaxed)
            },
        )
        .await;
        counts().last_frames.load(Ordering::Relaxed)
    };

    let first = upload_and_copy(batch("wal-a", 400)).await;
    // Far below the writer's own checkpoint, which did not run.
    let backstop_frames = db::WAL_BACKSTOP_BYTES / db::PAGE_SIZE;
    assert!(
        first < backstop_frames,
        "{first} frames, backstop {backstop_frames}"
    );
    assert_eq!(counts().failures.load(Ordering::Relaxed), 0);

    // A small write after it: the WAL started over, so it holds that write
    // alone, fewer frames than the first.
    let second = upload_and_copy(batch("wal-b", 5)).await;
    assert!(
        second < first,
        "the WAL did not start over: {second} frames after {first}"
    );
    assert_eq!(total(&db, session.launch_id).await, 405);
}

/// A write that does not go through the group writer (here a launch renamed
/// on the write pool, as the UI order's settles, case folds and launch
/// changes write) is checkpointed beside the writer too: the checkpointer is
/// woken each time the writer's connection comes back, not only by grouped
/// commits, so such a WAL does not wait for the next upload or the writer's
/// 160 MiB backstop.
#[tokio::test]
async fn a_write_outside_a_group_is_copied_back_beside_the_writer() {
    let (_dir, db) = fresh_db().await;
    let (_, session) = session(&db, "run-plain").await;
    let counts = db
        .checkpoints
        .as_ref()
        .expect("SQLite has a checkpointer")
        .counts();
    let ran_before = counts.runs.load(Ordering::Relaxed);
    {
        let mut conn = db.write.acquire().await.unwrap();
        sqlx::query("UPDATE launches SET name = 'renamed' WHERE id = $1")
            .bind(session.launch_id)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let written = counts.commits.load(Ordering::Relaxed);
    until(
        "a checkpoint after the plain write copied the whole WAL back",
        || {
            counts.runs.load(Ordering::Relaxed) > ran_before
                && counts.covered.load(Ordering::Relaxed) >= written
                && counts.last_frames.load(Ordering::Relaxed) > 0
                && counts.last_copied.load(Ordering::Relaxed)
                    == counts.last_frames.load(Ordering::Relaxed)
        },
    )
    .await;
    assert_eq!(counts.failures.load(Ordering::Relaxed), 0);
}
