//! A test case's last status and default executor (`db::case_last`): known
//! cases' attempts are queued by an upload and folded later, yet whoever
//! reads a case sees every attempt stored before it asked; the fold keeps the
//! attempt with the latest start whatever order attempts arrive in; a queue
//! left behind is folded at start, and before `server migrate` copies it to
//! PostgreSQL; a database from before migration 0029 keeps its cases'
//! statuses.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::{Connection, Row};

use super::{TestApp, ADMIN};
use crate::db::{self, Db};

async fn count(db: &Db, table: &str) -> i64 {
    sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_one(&db.read)
        .await
        .unwrap()
        .get("n")
}

/// Starts a job run of `job` (into `launch`, else a new one): `(launch id,
/// job id, job run id)`.
async fn job_run(app: &TestApp, project: i64, job: &str, launch: Option<i64>) -> (i64, i64, i64) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run = format!("{job}-{}", RUNS.fetch_add(1, Ordering::Relaxed));
    let r = app.start_job_run(ADMIN, project, job, &run, launch).await;
    (r.id("launchId"), r.id("jobId"), r.id("jobRunId"))
}

/// Uploads `(uuid, test, status, start)` results through job run `run`.
async fn upload(app: &TestApp, run: i64, results: &[(&str, &str, &str, i64)]) {
    let session = app
        .post("/api/upload/session", ADMIN, &json!({"jobRunId": run}))
        .await
        .expect(200)
        .id("id");
    let results: Vec<Value> = results
        .iter()
        .map(|(uuid, test, status, start)| {
            json!({
                "uuid": uuid, "name": test, "fullName": format!("shop.{test}"),
                "status": status, "start": start, "stop": start + 5,
            })
        })
        .collect();
    app.upload_results(ADMIN, session, &results).await;
}

/// `name -> (last status, default executor's job id)` of `project`'s cases,
/// and the names the status filter `status` finds, through the API.
async fn cases(
    app: &TestApp,
    project: i64,
    status: &str,
) -> (Vec<(String, Value, Value)>, Vec<String>) {
    let all = app
        .get(
            &format!("/api/testcase?projectId={project}&size=100"),
            ADMIN,
        )
        .await
        .expect(200);
    let mut out: Vec<(String, Value, Value)> = all.body["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["lastStatus"].clone(),
                c["job"]["id"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let found = app
        .get(
            &format!("/api/testcase?projectId={project}&status={status}&size=100"),
            ADMIN,
        )
        .await
        .expect(200);
    let mut names: Vec<String> = found.body["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    (out, names)
}

async fn latest_attempts_are_read_as_soon_as_they_are_stored(app: &TestApp) {
    let db = &app.state.db;
    // SQLite queues an attempt at a known case; PostgreSQL writes it at once.
    let queued = |n: i64| {
        if db.backend == db::Backend::Sqlite {
            n
        } else {
            0
        }
    };
    let project = app.create_project("last").await;
    let (launch, job_a, run) = job_run(app, project, "acme/shop/a", None).await;
    upload(
        app,
        run,
        &[
            ("a1", "t1", "passed", 1_000),
            ("a2", "t2", "passed", 1_000),
            ("a3", "t3", "failed", 1_000),
        ],
    )
    .await;
    // Created with the upload: nothing queued.
    assert_eq!(count(db, "test_case_pending").await, 0);
    let (all, failed) = cases(app, project, "failed").await;
    assert_eq!(
        all,
        vec![
            ("t1".into(), json!("passed"), json!(job_a)),
            ("t2".into(), json!("passed"), json!(job_a)),
            ("t3".into(), json!("failed"), json!(job_a)),
        ]
    );
    assert_eq!(failed, ["t3"]);

    // A next run by another job: t1 fails later, t3 passes later, and a
    // straggler of an older run says t2 failed before its last pass.
    let (_, job_b, run) = job_run(app, project, "acme/shop/b", Some(launch)).await;
    upload(
        app,
        run,
        &[
            ("b1", "t1", "failed", 2_000),
            ("b3", "t3", "passed", 2_000),
            ("b2", "t2", "failed", 500),
        ],
    )
    .await;
    // Known cases: on SQLite their attempts wait in the queue.
    assert_eq!(count(db, "test_case_pending").await, queued(3));
    let (all, failed) = cases(app, project, "failed").await;
    assert_eq!(
        count(db, "test_case_pending").await,
        0,
        "reading settled the queue"
    );
    assert_eq!(
        all,
        vec![
            ("t1".into(), json!("failed"), json!(job_b)),
            ("t2".into(), json!("passed"), json!(job_b)),
            ("t3".into(), json!("passed"), json!(job_b)),
        ]
    );
    assert_eq!(failed, ["t1"]);

    // Folded in another order (older attempts after a settle, two of one
    // case in one fold) the same rule holds: t1 keeps its failure, t2 takes
    // its newer attempt, and the executor is the job that uploaded last.
    upload(app, run, &[("c1", "t1", "passed", 1_500)]).await;
    let (_, _, run_a) = job_run(app, project, "acme/shop/a", Some(launch)).await;
    upload(
        app,
        run_a,
        &[("c2", "t1", "broken", 1_400), ("c3", "t2", "broken", 3_000)],
    )
    .await;
    assert_eq!(count(db, "test_case_pending").await, queued(3));
    let (all, _) = cases(app, project, "broken").await;
    assert_eq!(
        all,
        vec![
            ("t1".into(), json!("failed"), json!(job_a)),
            ("t2".into(), json!("broken"), json!(job_a)),
            ("t3".into(), json!("passed"), json!(job_b)),
        ]
    );
    let case = app.test_case(project, "t1").await;
    assert_eq!(case["lastStatus"], "failed");
    let t1 = case["id"].as_i64().unwrap();

    // A manual result, newer: the status moves, the executor stays.
    app.post(
        &format!("/api/launch/{launch}/manual"),
        ADMIN,
        &json!({"results": [{"testCaseId": t1, "status": "passed"}]}),
    )
    .await
    .expect(200);
    let case = app.test_case(project, "t1").await;
    assert_eq!(case["lastStatus"], "passed");
    assert_eq!(case["job"]["id"], job_a);
}

#[tokio::test]
async fn latest_attempts_are_read_as_soon_as_they_are_stored_on_sqlite() {
    let app = TestApp::new().await;
    latest_attempts_are_read_as_soon_as_they_are_stored(&app).await;
}

#[tokio::test]
async fn latest_attempts_are_read_as_soon_as_they_are_stored_on_postgres() {
    let Some(cluster) = super::pg::PgCluster::start() else {
        return;
    };
    let app = TestApp::on_postgres(&cluster, "case_last").await;
    latest_attempts_are_read_as_soon_as_they_are_stored(&app).await;
    app.state.db.write.close().await;
    drop(cluster);
}

/// What no reader settled is folded in the background: at start (a queue an
/// earlier process left), and after uploads pause.
#[tokio::test]
async fn the_server_folds_a_queue_nobody_read() {
    let app = TestApp::new().await;
    let db = &app.state.db;
    let project = app.create_project("queue").await;
    let (launch, _, run) = job_run(&app, project, "acme/shop/q", None).await;
    upload(&app, run, &[("q1", "t1", "passed", 1_000)]).await;
    let (_, _, run) = job_run(&app, project, "acme/shop/q", Some(launch)).await;
    upload(&app, run, &[("q2", "t1", "broken", 2_000)]).await;
    assert_eq!(count(db, "test_case_pending").await, 1);

    let settler = db::settle::spawn(db.clone());
    let folded = async {
        while count(db, "test_case_pending").await > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), folded)
        .await
        .expect("the queue left before start was folded");
    let status: String = sqlx::query("SELECT status FROM test_case_last")
        .fetch_one(&db.read)
        .await
        .unwrap()
        .get("status");
    assert_eq!(status, "broken");

    // Queued while it runs, folded once uploads pause.
    upload(&app, run, &[("q3", "t1", "failed", 3_000)]).await;
    let folded = async {
        loop {
            let status: String = sqlx::query("SELECT status FROM test_case_last")
                .fetch_one(&db.read)
                .await
                .unwrap()
                .get("status");
            if status == "failed" && count(db, "test_case_pending").await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), folded)
        .await
        .expect("the queue was folded after the upload");
    settler.abort();
}

/// A database from before migration 0029 (the last attempt in the case row,
/// no `test_case_last`) keeps its cases' statuses and executors.
#[tokio::test]
async fn a_database_from_before_0029_keeps_its_cases_statuses() {
    let (_dir, url, db, _, session) = super::file_db_session("run-before").await;
    let results = ["t1", "t2"].map(|t| onelaunch_api::UploadTestResult {
        uuid: format!("u-{t}"),
        name: t.into(),
        status: Some("passed".into()),
        ..Default::default()
    });
    crate::ingest::results(&db, &session, results.to_vec())
        .await
        .unwrap();
    let job = session.job_id.unwrap();
    // As 0028 left it: the attempt in the case row.
    super::rewound(
        db,
        &url,
        &[
            "DROP TABLE test_case_last",
            "DROP TABLE test_case_pending",
            "CREATE INDEX test_cases_job ON test_cases(job_id)",
            "UPDATE test_cases SET last_status = CASE name WHEN 't1' THEN 'failed' ELSE 'skipped' END, \
             last_start_ms = 7, job_id = (SELECT MIN(id) FROM jobs)",
            "DELETE FROM _sqlx_migrations WHERE version = 29",
        ],
    )
    .await;

    let db = Db::connect(&url).await.unwrap();
    let (cases, total) = db::test_cases::list_cases(&db, 1, &Default::default(), None)
        .await
        .unwrap();
    assert_eq!(total, 2);
    let got: Vec<(String, Option<String>, Option<i64>)> = cases
        .into_iter()
        .map(|c| (c.name, c.last_status, c.job_id))
        .collect();
    assert_eq!(
        got,
        vec![
            ("t1".into(), Some("failed".into()), Some(job)),
            ("t2".into(), Some("skipped".into()), Some(job)),
        ]
    );
    let index: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'test_cases_job'")
            .fetch_optional(&db.read)
            .await
            .unwrap();
    assert_eq!(index, None);
}

/// On SQLite a next run's known cases cost no writes: upserting cases with
/// the facts they hold leaves their pages clean (the transaction adds one WAL
/// frame whatever their number: `sqlite_sequence`, as a row that goes to the
/// conflict arm still takes an id), while changed labels are written.
#[tokio::test]
async fn a_known_case_with_the_same_facts_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
    let db = Db::connect(&url).await.unwrap();
    db::projects::bootstrap(&db, Some("w")).await.unwrap();
    let facts = |label: &str| -> Vec<db::test_cases::CaseFacts> {
        (0..2000)
            .map(|i| {
                let labels = [onelaunch_api::LabelDto {
                    name: "suite".into(),
                    value: label.into(),
                }];
                db::test_cases::CaseFacts::new(
                    format!("full:t{i:04}"),
                    None,
                    format!("t{i:04}"),
                    Some(format!("shop.t{i:04}")),
                    &labels,
                    "passed",
                )
            })
            .collect()
    };
    // WAL frames written by upserting `cases` in one transaction, on the
    // writer's connection held throughout: while it is held, nothing wakes
    // the checkpoints beside the writer (`db::checkpoint`), and the one
    // woken before is waited for, so the WAL is the test's alone.
    let mut conn = db.write.acquire().await.unwrap();
    let counts = db.checkpoints.as_ref().unwrap().counts();
    let released = counts.commits.load(std::sync::atomic::Ordering::Relaxed);
    super::until("the checkpoint woken before ran", || {
        counts.covered.load(std::sync::atomic::Ordering::Relaxed) >= released
    })
    .await;
    async fn frames(
        conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
        cases: Vec<db::test_cases::CaseFacts>,
    ) -> i64 {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut **conn)
            .await
            .unwrap();
        let mut tx = conn.begin().await.unwrap();
        let refs: Vec<&db::test_cases::CaseFacts> = cases.iter().collect();
        db::test_cases::upsert_cases(&mut tx, 1, &refs)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        row.get::<i64, _>(1)
    }
    let created = frames(&mut conn, facts("a")).await;
    assert!(created > 10, "new cases are written: {created} frames");
    assert_eq!(
        frames(&mut conn, facts("a")).await,
        1,
        "known cases, same facts"
    );
    let changed = frames(&mut conn, facts("b")).await;
    assert!(changed > 10, "other labels are written: {changed} frames");
}

/// A known case takes the name and labels a next upload sends, and keeps its
/// full name and `ALLURE_ID` when none is sent; cases new and known in one
/// call answer their ids in the order given. SQLite creates new cases with
/// `DO NOTHING` and sends only known ones through the conflict arm, in
/// either order (`db::test_cases::upsert_cases_sqlite`: a new case first, a
/// known case first); PostgreSQL takes one statement: both store the same.
#[tokio::test]
async fn a_known_case_takes_the_facts_sent_and_keeps_what_was_not() {
    known_case_facts(&TestApp::new().await).await;
}

#[tokio::test]
async fn a_known_case_takes_the_facts_sent_and_keeps_what_was_not_on_postgres() {
    let Some(cluster) = super::pg::PgCluster::start() else {
        return;
    };
    known_case_facts(&TestApp::on_postgres(&cluster, "known_facts").await).await;
}

async fn known_case_facts(app: &TestApp) {
    use db::test_cases::CaseFacts;
    let db = &app.state.db;
    let project = app.create_project("facts").await;
    let label = |v: &str| {
        [onelaunch_api::LabelDto {
            name: "suite".into(),
            value: v.into(),
        }]
    };
    let facts = |id: &str, name: &str, full: Option<&str>, allure: Option<&str>, suite: &str| {
        CaseFacts::new(
            id.into(),
            allure.map(str::to_string),
            name.into(),
            full.map(str::to_string),
            &label(suite),
            "passed",
        )
    };
    async fn upsert(db: &Db, project: i64, cases: &[CaseFacts]) -> Vec<i64> {
        let mut conn = db.write.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        let refs: Vec<&CaseFacts> = cases.iter().collect();
        let ids = db::test_cases::upsert_cases(&mut tx, project, &refs)
            .await
            .unwrap()
            .ids;
        tx.commit().await.unwrap();
        ids
    }
    let first = upsert(
        db,
        project,
        &[
            facts("c:a", "a", Some("shop.a"), Some("7"), "one"),
            facts("c:b", "b", Some("shop.b"), None, "one"),
            facts("c:c", "c", None, None, "one"),
        ],
    )
    .await;
    // Known cases between two new ones, in identity order.
    let next = upsert(
        db,
        project,
        &[
            facts("c:0", "zero", None, None, "two"),
            facts("c:a", "a renamed", None, None, "two"),
            facts("c:b", "b", Some("shop.b2"), Some("9"), "one"),
            facts("c:c", "c", None, None, "one"),
            facts("c:d", "d", None, None, "two"),
        ],
    )
    .await;
    assert_eq!(&next[1..4], &first[..], "known cases keep their ids");
    assert!(!first.contains(&next[0]) && !first.contains(&next[4]));
    let case = |id: i64| async move {
        let c = db::test_cases::get_case(db, id).await.unwrap().unwrap();
        let labels: Vec<String> = c.labels.iter().map(|l| l.value.to_string()).collect();
        (c.name, c.full_name, c.allure_id, labels)
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        case(next[1]).await,
        (
            "a renamed".into(),
            s("shop.a"),
            s("7"),
            vec!["two".to_string()]
        ),
        "name and labels sent, full name and ALLURE_ID kept"
    );
    assert_eq!(
        case(next[2]).await,
        ("b".into(), s("shop.b2"), s("9"), vec!["one".to_string()]),
        "a full name and ALLURE_ID sent replace the stored ones"
    );
    assert_eq!(
        case(next[3]).await,
        ("c".into(), None, None, vec!["one".to_string()])
    );
    assert_eq!(case(next[0]).await.0, "zero");
    assert_eq!(case(next[4]).await.0, "d");
    // A known case first (SQLite looks the others up before it creates),
    // then a new one.
    let third = upsert(
        db,
        project,
        &[
            facts("c:a", "a again", None, None, "three"),
            facts("c:e", "e", Some("shop.e"), None, "three"),
        ],
    )
    .await;
    assert_eq!(third[0], first[0]);
    assert!(!next.contains(&third[1]));
    assert_eq!(
        case(third[0]).await,
        (
            "a again".into(),
            s("shop.a"),
            s("7"),
            vec!["three".to_string()]
        )
    );
    assert_eq!(
        case(third[1]).await,
        ("e".into(), s("shop.e"), None, vec!["three".to_string()])
    );
    assert_eq!(count(db, "test_cases").await, 6);
}

/// `server migrate` folds what the SQLite source left queued before it copies:
/// PostgreSQL never folds a queue, so a queued attempt copied as it was would
/// leave its case's last status behind there.
#[tokio::test]
async fn a_queue_left_in_sqlite_is_folded_before_it_moves_to_postgres() {
    let Some(cluster) = super::pg::PgCluster::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::with_config(|c| c.data_dir = dir.path().join("data")).await;
    let db = &app.state.db;
    let project = app.create_project("moving").await;
    let (launch, _, run) = job_run(&app, project, "acme/shop/m", None).await;
    upload(&app, run, &[("m1", "t1", "passed", 1_000)]).await;
    let (_, _, run) = job_run(&app, project, "acme/shop/m", Some(launch)).await;
    upload(&app, run, &[("m2", "t1", "failed", 2_000)]).await;
    assert_eq!(count(db, "test_case_pending").await, 1, "queued on SQLite");

    let from = format!(
        "sqlite://{}",
        dir.path().join("data").join("onelaunch.db").display()
    );
    let to = cluster.database("moved_queue");
    crate::migrate::copy_database(&from, &to).await.unwrap();
    let moved = Db::connect(&to).await.unwrap();
    assert_eq!(count(&moved, "test_case_pending").await, 0);
    let (cases, total) = db::test_cases::list_cases(&moved, project, &Default::default(), None)
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(cases[0].last_status.as_deref(), Some("failed"));
    moved.write.close().await;
    drop(cluster);
}
