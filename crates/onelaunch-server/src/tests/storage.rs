//! The storage story on both backends: the same calls into the data layer
//! (`db::` job start create-or-join, close/reopen, delete launch; results and
//! sessions through `ingest`, which owns the write rules) give the same
//! outcomes on SQLite and on PostgreSQL.

use onelaunch_api::{self as api, Id};

use super::pg::PgCluster;
use crate::db::{self, job_runs::StartOutcome, Db};
use crate::error::ServerError;

fn start(run_uid: &str, launch: Option<Id>) -> api::ExternalRunStart {
    api::ExternalRunStart {
        project_id: 1,
        ci: None,
        job: api::JobRef {
            uid: "acme/shop/ci".into(),
            name: Some("CI".into()),
            ..Default::default()
        },
        job_run: api::JobRef {
            uid: run_uid.into(),
            ..Default::default()
        },
        launch: Some(api::LaunchRef {
            id: launch,
            name: Some("nightly".into()),
            ..Default::default()
        }),
        implicit: false,
    }
}

async fn started(db: &Db, req: &api::ExternalRunStart) -> api::ExternalRunResponse {
    match db::job_runs::start_run(db, req).await.unwrap() {
        StartOutcome::Ok(r) => r,
        StartOutcome::LaunchClosed(id) => panic!("launch {id} unexpectedly closed"),
    }
}

fn result(uuid: &str, history: &str, status: &str, start: i64) -> api::UploadTestResult {
    api::UploadTestResult {
        uuid: uuid.into(),
        history_id: Some(history.into()),
        name: format!("test {history}"),
        status: Some(status.into()),
        start: Some(start),
        stop: Some(start + 10),
        ..Default::default()
    }
}

async fn statistic(db: &Db, launch: Id) -> Vec<(String, i64)> {
    db::launches::launch_statistic(db, launch)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.status, i.count))
        .collect()
}

async fn result_total(db: &Db, launch: Id) -> i64 {
    db::results::list_results(db, launch, None, 0, 100)
        .await
        .unwrap()
        .1
}

/// Runs the story, asserting as it goes, and returns what it saw in a form
/// that does not depend on the ids the backend handed out.
async fn story(db: &Db) -> Vec<String> {
    let mut seen = Vec::new();
    db::projects::bootstrap(db, Some("storage-test"))
        .await
        .unwrap();

    // Create, then join: the same uids give the same job run and launch.
    let first = started(db, &start("run-1", None)).await;
    let again = started(db, &start("run-1", None)).await;
    assert_eq!(first, again);
    let launch = first.launch_id;
    // A second run of the job joins the launch by id.
    let second = started(db, &start("run-2", Some(launch))).await;
    assert_eq!(second.launch_id, launch);
    assert_eq!(second.job_id, first.job_id);
    assert_ne!(second.job_run_id, first.job_run_id);
    let runs = db::job_runs::launch_job_runs(db, launch).await.unwrap();
    let uids: Vec<&str> = runs.iter().map(|r| r.uid.as_str()).collect();
    assert_eq!(uids, ["run-1", "run-2"]);
    seen.push(format!("job runs {uids:?}"));
    let jobs = db::job_runs::list_jobs(db, 1).await.unwrap();
    assert_eq!(jobs.len(), 1);
    seen.push(format!("jobs {}", jobs.len()));

    // Results: the same uuids twice are stored once, with the same ids.
    let launch_row = db::launches::get_launch(db, launch).await.unwrap().unwrap();
    let session =
        crate::ingest::open_session(db, &launch_row, Some(first.job_run_id), &[], None, false)
            .await
            .unwrap();
    let batch = [
        result("u-a", "ha", "passed", 1_000),
        result("u-b1", "hb", "failed", 1_000),
        result("u-b2", "hb", "passed", 2_000),
        result("u-c", "hc", "broken", 1_000),
    ];
    let refs = crate::ingest::results(db, &session, batch.to_vec())
        .await
        .unwrap();
    let uuids: Vec<&str> = refs.iter().map(|r| r.uuid.as_str()).collect();
    assert_eq!(uuids, ["u-a", "u-b1", "u-b2", "u-c"], "in request order");
    let repeated = crate::ingest::results(db, &session, batch.to_vec())
        .await
        .unwrap();
    assert_eq!(repeated, refs);
    assert_eq!(result_total(db, launch).await, 4);
    // Known, new and repeated uuids in one batch: the known answer their
    // ids, the new one is stored once and is the only one counted as new.
    let mixed = [
        result("u-c", "hc", "broken", 1_000),
        result("u-e", "he", "passed", 3_000),
        result("u-a", "ha", "passed", 1_000),
        result("u-e", "he", "failed", 4_000),
    ];
    let (mixed_refs, new) = crate::ingest::results_counted(db, &session, mixed.to_vec())
        .await
        .unwrap();
    assert_eq!(new, 1);
    assert_eq!(mixed_refs[0], refs[3]);
    assert_eq!(mixed_refs[2], refs[0]);
    assert_eq!(mixed_refs[1], mixed_refs[3]);
    assert!(refs.iter().all(|r| r.id != mixed_refs[1].id));
    assert_eq!(result_total(db, launch).await, 5);
    seen.push(format!("results {}", result_total(db, launch).await));
    let run = db::job_runs::get_job_run(db, first.job_run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.result_count, 5);

    // Attachment bytes of several results in one statement: a name given
    // twice counts once (the last bytes), a name a result declared before
    // points at the bytes now; sending them again changes nothing.
    let bytes = |result_id, file_name, sha256| db::result_rows::AttachmentBytes {
        result_id,
        file_name,
        content_type: Some("text/plain"),
        size: 3,
        sha256,
    };
    let rows = [
        bytes(refs[0].id, "log.txt", "aa"),
        bytes(refs[1].id, "log.txt", "bb"),
        bytes(refs[0].id, "log.txt", "cc"),
        bytes(refs[0].id, "shot.png", "dd"),
    ];
    for _ in 0..2 {
        let mut tx = db.write.begin().await.unwrap();
        db::result_rows::put_attachments(&mut tx, &rows)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let of = |atts: Vec<db::results::AttachmentRow>| -> Vec<(String, Option<String>)> {
        atts.into_iter().map(|a| (a.1, a.5)).collect()
    };
    let first_atts = of(db::results::result_attachments(db, refs[0].id)
        .await
        .unwrap());
    assert_eq!(
        first_atts,
        [
            ("log.txt".to_string(), Some("cc".to_string())),
            ("shot.png".to_string(), Some("dd".to_string()))
        ]
    );
    let second_atts = of(db::results::result_attachments(db, refs[1].id)
        .await
        .unwrap());
    assert_eq!(
        second_atts,
        [("log.txt".to_string(), Some("bb".to_string()))]
    );
    seen.push(format!("attachments {first_atts:?} {second_atts:?}"));

    // Each test counts once, by its latest attempt.
    let stat = statistic(db, launch).await;
    assert_eq!(stat, [("passed".to_string(), 3), ("broken".to_string(), 1)]);
    seen.push(format!("statistic {stat:?}"));

    // Closed: nothing is added; closing twice changes nothing.
    db::launches::set_launch_closed(db, launch, true)
        .await
        .unwrap();
    let closed = db::launches::get_launch(db, launch).await.unwrap().unwrap();
    assert!(closed.closed);
    db::launches::set_launch_closed(db, launch, true)
        .await
        .unwrap();
    let still = db::launches::get_launch(db, launch).await.unwrap().unwrap();
    assert_eq!(
        still.modified_ms, closed.modified_ms,
        "closing twice is a no-op"
    );
    let late = [result("u-d", "hd", "failed", 3_000)];
    match crate::ingest::results(db, &session, late.to_vec()).await {
        Err(ServerError::LaunchClosed(id)) => assert_eq!(id, launch),
        other => panic!("ingest into a closed launch: {other:?}"),
    }
    match db::job_runs::start_run(db, &start("run-3", Some(launch)))
        .await
        .unwrap()
    {
        StartOutcome::LaunchClosed(id) => assert_eq!(id, launch),
        StartOutcome::Ok(r) => panic!("joined a closed launch: {r:?}"),
    }
    assert_eq!(result_total(db, launch).await, 5);
    assert_eq!(
        db::job_runs::launch_job_runs(db, launch)
            .await
            .unwrap()
            .len(),
        2
    );
    seen.push("closed refuses results and new job runs".into());

    // Reopened: both go in.
    db::launches::set_launch_closed(db, launch, false)
        .await
        .unwrap();
    assert!(
        !db::launches::get_launch(db, launch)
            .await
            .unwrap()
            .unwrap()
            .closed
    );
    crate::ingest::results(db, &session, late.to_vec())
        .await
        .unwrap();
    let third = started(db, &start("run-3", Some(launch))).await;
    assert_eq!(third.launch_id, launch);
    let stat = statistic(db, launch).await;
    assert_eq!(
        stat,
        [
            ("passed".to_string(), 3),
            ("failed".to_string(), 1),
            ("broken".to_string(), 1)
        ]
    );
    seen.push(format!("reopened: statistic {stat:?}"));

    // Deleted: the launch and everything in it are gone; the job stays.
    db::launches::delete_launch(db, launch).await.unwrap();
    assert!(db::launches::get_launch(db, launch)
        .await
        .unwrap()
        .is_none());
    assert!(db::job_runs::get_job_run(db, first.job_run_id)
        .await
        .unwrap()
        .is_none());
    assert!(db::results::get_session(db, session.id)
        .await
        .unwrap()
        .is_none());
    assert!(db::results::result_owner(db, refs[0].id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(result_total(db, launch).await, 0);
    assert!(db::job_runs::find_job(db, 1, "acme/shop/ci")
        .await
        .unwrap()
        .is_some());
    seen.push("deleted with its job runs, sessions and results; the job stays".into());

    // A new start after the delete creates a new launch.
    let fresh = started(db, &start("run-1", None)).await;
    assert_ne!(fresh.launch_id, launch);
    assert_eq!(fresh.job_id, first.job_id);
    seen.push("a new start creates a new launch".into());
    seen
}

#[tokio::test]
async fn storage_story_on_sqlite_and_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("story.db").display()
    );
    let sqlite = Db::connect(&url).await.unwrap();
    assert_eq!(sqlite.backend, db::Backend::Sqlite);
    let on_sqlite = story(&sqlite).await;

    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let pg = Db::connect(&cluster.database("story")).await.unwrap();
    assert_eq!(pg.backend, db::Backend::Postgres);
    let on_postgres = story(&pg).await;
    assert_eq!(on_postgres, on_sqlite);
    pg.write.close().await;
    drop(cluster);
}

/// The bundled SQLite is compiled as `.cargo/config.toml` asks
/// (`LIBSQLITE3_FLAGS`, read by `libsqlite3-sys`'s build): no memory
/// statistics (with them every allocation and free of SQLite's takes a
/// process-wide mutex and measures its block), and a lookaside large enough
/// for one multi-row statement's bound texts (SQLite's default, 48 KB, is
/// spent by the first few dozen rows of a 200-row insert; each text past it
/// went to `malloc`). A build that lost the file would store the same data,
/// more slowly (docs/ingest-profile.md, "SQLite built for the writer").
#[tokio::test]
async fn the_bundled_sqlite_keeps_no_memory_statistics_and_a_lookaside_for_a_whole_statement() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
    let db = Db::connect(&url).await.unwrap();
    let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
        .fetch_all(&db.read)
        .await
        .unwrap();
    for wanted in ["DEFAULT_MEMSTATUS=0", "DEFAULT_LOOKASIDE=1200,500"] {
        assert!(
            options.iter().any(|o| o == wanted),
            "SQLite was compiled without {wanted}: {options:?}"
        );
    }
}

/// The SQLite writer's settings that durability and ingest speed rest on:
/// WAL with `synchronous=NORMAL` (docs/ingest-profile.md, "Durability"),
/// foreign keys enforced, 16 KiB pages for a new database; checkpoints are
/// run beside the writer (`db::checkpoint`, tested in `group_commit`), and
/// the writer checkpoints itself only past 160 MiB of WAL, the size a
/// larger WAL file is cut back to when it starts over; a 32 MiB page cache
/// (a negative `cache_size` is KiB), which bounds the writer's share of the
/// server's memory. A database made with SQLite's 4 KiB pages keeps them,
/// and checkpoints after as many bytes.
#[tokio::test]
async fn the_sqlite_writer_runs_in_wal_with_16_kib_pages_and_checkpoints_itself_past_160_mib() {
    let dir = tempfile::tempdir().unwrap();
    let settings = async |db: &Db| -> Vec<String> {
        let mut conn = db.write.acquire().await.unwrap();
        let mut out = Vec::new();
        for name in [
            "journal_mode",
            "synchronous",
            "foreign_keys",
            "page_size",
            "wal_autocheckpoint",
            "journal_size_limit",
            "cache_size",
        ] {
            let row = sqlx::query(&format!("PRAGMA {name}"))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            use sqlx::Row;
            out.push(
                row.try_get::<String, _>(0)
                    .or_else(|_| row.try_get::<i64, _>(0).map(|v| v.to_string()))
                    .unwrap(),
            );
        }
        out
    };
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
    let db = Db::connect(&url).await.unwrap();
    // synchronous 1 = NORMAL
    assert_eq!(
        settings(&db).await,
        ["wal", "1", "1", "16384", "10240", "167772160", "-32768"]
    );

    // A database made with SQLite's default pages, as earlier versions did.
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    {
        use sqlx::Connection;
        let mut made = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER);",
        )
        .execute(&mut made)
        .await
        .unwrap();
        made.close().await.unwrap();
    }
    let db = Db::connect(&url).await.unwrap();
    assert_eq!(
        settings(&db).await,
        ["wal", "1", "1", "4096", "40960", "167772160", "-32768"]
    );
    // Its backup (what a restore puts back) has the pages a new one gets.
    let dest = dir.path().join("copy.db");
    let pool = db::backup::open_plain(&url).await.unwrap();
    db::backup::sqlite_snapshot(&pool, &dest.display().to_string())
        .await
        .unwrap();
    pool.close().await;
    let url = format!("sqlite://{}?mode=rwc", dest.display());
    let copy = Db::connect(&url).await.unwrap();
    assert_eq!(
        settings(&copy).await,
        ["wal", "1", "1", "16384", "10240", "167772160", "-32768"]
    );
    let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_schema WHERE name = 't'")
        .fetch_one(&copy.read)
        .await
        .unwrap();
    assert_eq!(tables, 1);
}
