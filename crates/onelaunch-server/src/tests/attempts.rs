//! Attempts belong to one job: the same test (same `historyId`) run by two
//! jobs of one launch is two results, each with its own status; a re-run of
//! the same job into the launch adds an attempt, and its latest attempt decides.

use serde_json::{json, Value};

use super::{TestApp, ADMIN};
use crate::db;
use onelaunch_api as api;

fn start(ci: &str, job: &str, run: &str, launch: Option<i64>) -> Value {
    let launch = match launch {
        Some(id) => json!({"id": id}),
        None => json!({"name": "release 1.4"}),
    };
    json!({
        "projectId": 1,
        "ci": {"type": ci},
        "job": {"uid": job, "name": job},
        "jobRun": {"uid": run, "name": run},
        "launch": launch,
    })
}

async fn upload(app: &TestApp, job_run: i64, uuid: &str, status: &str, start: i64) {
    let session = app
        .post("/api/upload/session", ADMIN, &json!({"jobRunId": job_run}))
        .await
        .expect(200)
        .id("id");
    let batch = json!({
        "testSessionId": session,
        "results": [{
            "uuid": uuid,
            "historyId": "checkout-total",
            "name": "checkout total",
            "fullName": "shop.Checkout#total",
            "status": status,
            "start": start,
            "stop": start + 5,
        }],
    });
    app.post("/api/upload/test-result", ADMIN, &batch)
        .await
        .expect(200);
}

async fn counts(app: &TestApp, launch: i64) -> Vec<(String, i64)> {
    let stat = app
        .get(&format!("/api/launch/{launch}/statistic"), ADMIN)
        .await
        .expect(200);
    let mut out: Vec<(String, i64)> = stat
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["status"].as_str().unwrap().to_string(),
                i["count"].as_i64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn the_same_test_in_two_jobs_is_two_results_and_a_rerun_of_one_job_is_an_attempt() {
    let app = TestApp::new().await;
    let linux = app
        .post(
            "/api/upload/start",
            ADMIN,
            &start("github", "acme/shop/linux", "gh-1", None),
        )
        .await
        .expect(200);
    let launch = linux.id("launchId");
    let windows = app
        .post(
            "/api/upload/start",
            ADMIN,
            &start("gitlab", "acme/shop/windows", "gl-1", Some(launch)),
        )
        .await
        .expect(200);
    assert_eq!(windows.id("launchId"), launch);
    assert_ne!(windows.id("jobId"), linux.id("jobId"));

    // Linux fails the test, Windows passes it later: two results, neither a
    // retry of the other.
    upload(&app, linux.id("jobRunId"), "u-linux", "failed", 1_000).await;
    upload(&app, windows.id("jobRunId"), "u-windows", "passed", 2_000).await;
    assert_eq!(
        counts(&app, launch).await,
        vec![("failed".to_string(), 1), ("passed".to_string(), 1)]
    );

    // A CI re-run of the Linux job (same job, new job run) in the same launch:
    // its passing attempt supersedes the Linux failure only.
    let rerun = app
        .post(
            "/api/upload/start",
            ADMIN,
            &start("github", "acme/shop/linux", "gh-2", Some(launch)),
        )
        .await
        .expect(200);
    assert_eq!(rerun.id("jobId"), linux.id("jobId"));
    assert_ne!(rerun.id("jobRunId"), linux.id("jobRunId"));
    upload(&app, rerun.id("jobRunId"), "u-linux-2", "passed", 3_000).await;
    assert_eq!(counts(&app, launch).await, vec![("passed".to_string(), 2)]);

    // All three results are kept.
    let all = app
        .get(&format!("/api/testresult?launchId={launch}&size=10"), ADMIN)
        .await
        .expect(200);
    assert_eq!(all.id("totalElements"), 3);
}

async fn stop(app: &TestApp, job_run: i64, status: Option<&str>) {
    let mut body = json!({"projectId": 1, "jobRunId": job_run});
    if let Some(s) = status {
        body["status"] = json!(s);
    }
    app.post("/api/upload/stop", ADMIN, &body).await.expect(200);
}

async fn run_status(app: &TestApp, job_run: i64) -> (String, String) {
    let r = app
        .get(&format!("/api/jobrun/{job_run}"), ADMIN)
        .await
        .expect(200);
    (
        r.body["stage"].as_str().unwrap().to_string(),
        r.body["status"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_job_run_status_is_what_its_own_results_say_even_when_they_arrive_after_the_stop() {
    let app = TestApp::new().await;
    let run = app
        .post(
            "/api/upload/start",
            ADMIN,
            &start("github", "acme/shop/ci", "gh-1", None),
        )
        .await
        .expect(200);
    let (launch, job_run) = (run.id("launchId"), run.id("jobRunId"));

    // Stopped with nothing reported: not a green that did not happen.
    stop(&app, job_run, None).await;
    assert_eq!(
        run_status(&app, job_run).await,
        ("finished".into(), "unknown".into())
    );

    // A slow shard of the same CI run reports a failure after the stop.
    upload(&app, job_run, "u-slow", "failed", 1_000).await;
    assert_eq!(run_status(&app, job_run).await.1, "failed");

    // A CI re-run of the job passes the test: the launch counts it passed,
    // the first job run still says what its own attempt did.
    let again = app
        .post(
            "/api/upload/start",
            ADMIN,
            &start("github", "acme/shop/ci", "gh-2", Some(launch)),
        )
        .await
        .expect(200);
    upload(&app, again.id("jobRunId"), "u-rerun", "passed", 2_000).await;
    stop(&app, again.id("jobRunId"), None).await;
    assert_eq!(run_status(&app, again.id("jobRunId")).await.1, "passed");
    assert_eq!(run_status(&app, job_run).await.1, "failed");
    assert_eq!(counts(&app, launch).await, vec![("passed".to_string(), 1)]);

    // A late attempt of the first job run that started earlier makes it
    // derive its status again, from its own attempts only: its failure is
    // still its latest, whatever the re-run's later attempt said.
    upload(&app, job_run, "u-early", "passed", 500).await;
    assert_eq!(run_status(&app, job_run).await.1, "failed");
    assert_eq!(counts(&app, launch).await, vec![("passed".to_string(), 1)]);

    // A status given at the stop is kept when results arrive later.
    let given = app
        .post(
            "/api/upload/start",
            ADMIN,
            &start("github", "acme/shop/ci", "gh-3", Some(launch)),
        )
        .await
        .expect(200);
    stop(&app, given.id("jobRunId"), Some("cancelled")).await;
    upload(&app, given.id("jobRunId"), "u-late", "failed", 3_000).await;
    assert_eq!(run_status(&app, given.id("jobRunId")).await.1, "cancelled");
}

/// A job run's status is what the latest attempt of each of its tests says:
/// a test retried inside the job run (pytest-rerunfailures, Surefire's
/// `rerunFailingTestsCount`) that failed and then passed does not fail it;
/// one that passed and then failed does; a broken latest attempt fails it.
#[tokio::test]
async fn a_job_run_status_follows_the_latest_attempt_of_each_test_within_it() {
    latest_attempts_decide(&TestApp::new().await).await;
}

#[tokio::test]
async fn a_job_run_status_follows_the_latest_attempt_of_each_test_within_it_on_postgres() {
    let Some(cluster) = super::pg::PgCluster::start() else {
        return;
    };
    latest_attempts_decide(&TestApp::on_postgres(&cluster, "attempts").await).await;
}

async fn latest_attempts_decide(app: &TestApp) {
    // A job run, its attempts of one test in the order they are stored
    // (uuid, status, start), and the status it gets.
    let cases = [
        (
            "gh-retried",
            [("u-1", "failed", 1_000), ("u-2", "passed", 2_000)],
            "passed",
        ),
        (
            "gh-regressed",
            [("u-3", "passed", 1_000), ("u-4", "failed", 2_000)],
            "failed",
        ),
        (
            "gh-broken",
            [("u-5", "passed", 1_000), ("u-6", "broken", 2_000)],
            "failed",
        ),
        // Same start: the attempt stored last is the latest.
        (
            "gh-tie",
            [("u-7", "failed", 1_000), ("u-8", "passed", 1_000)],
            "passed",
        ),
    ];
    for (run, attempts, expected) in cases {
        let job_run = app
            .post(
                "/api/upload/start",
                ADMIN,
                &start("github", "acme/shop/ci", run, None),
            )
            .await
            .expect(200)
            .id("jobRunId");
        for (uuid, status, at) in attempts {
            upload(app, job_run, uuid, status, at).await;
        }
        stop(app, job_run, None).await;
        assert_eq!(run_status(app, job_run).await.1, expected, "{run}");
    }
}

/// A job run's latest attempts are found by index: its results through
/// `test_results_run` (job run, id), and each one's later attempts through
/// the launch's key index. Without an index for either SQLite read the whole
/// job run once per result, and closing a large job run took time growing
/// with the square of its size. The (job run, test key) index is gone
/// (migration 0027): its random keys cost every upload a rewrite of its pages.
#[tokio::test]
async fn the_latest_attempts_of_a_job_run_are_looked_up_by_index() {
    let app = TestApp::new().await;
    let q = format!(
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM test_results t WHERE t.job_run_id = 1 AND {}",
        crate::db::job_runs::LATEST_IN_RUN
    );
    let plan = query_plan(&app, &q).await;
    assert!(
        plan.iter()
            .any(|d| d.contains("SEARCH t USING INDEX test_results_run (job_run_id=?)")),
        "{plan:#?}"
    );
    assert!(
        plan.iter()
            .any(|d| d
                .contains("SEARCH u USING INDEX test_results_key (launch_id=? AND test_key=?)")),
        "{plan:#?}"
    );
    assert!(!plan.iter().any(|d| d.starts_with("SCAN")), "{plan:#?}");

    // The derived status checks only failed and broken results, the same way.
    let q = format!(
        "EXPLAIN QUERY PLAN SELECT 1 FROM test_results t WHERE t.job_run_id = 1 \
         AND t.status IN ('failed', 'broken') AND {}",
        crate::db::job_runs::LATEST_IN_RUN
    );
    let plan = query_plan(&app, &q).await;
    assert!(
        plan.iter()
            .any(|d| d.contains("SEARCH t USING INDEX test_results_run (job_run_id=?)")),
        "{plan:#?}"
    );
    assert!(!plan.iter().any(|d| d.starts_with("SCAN")), "{plan:#?}");
}

/// A combined launch finds the copies of results through the partial index
/// on `copied_from` (migration 0021), which uploaded results (no
/// `copied_from`) do not enter.
#[tokio::test]
async fn copies_of_results_are_found_by_the_partial_index() {
    use sqlx::Row;
    let app = TestApp::new().await;
    let q = "EXPLAIN QUERY PLAN SELECT n.id FROM attachments a \
             JOIN test_results o ON o.id = a.test_result_id \
             JOIN test_results n ON n.launch_id = 2 AND n.copied_from = o.id WHERE o.launch_id = 1";
    let plan = query_plan(&app, q).await;
    assert!(
        plan.iter()
            .any(|d| d.contains("INDEX test_results_copied (launch_id=?")),
        "{plan:#?}"
    );
    let sql: String =
        sqlx::query("SELECT sql FROM sqlite_master WHERE name = 'test_results_copied'")
            .fetch_one(&app.state.db.read)
            .await
            .unwrap()
            .try_get("sql")
            .unwrap();
    assert!(sql.contains("WHERE copied_from IS NOT NULL"), "{sql}");
}

/// On SQLite the test-case upsert answers nothing (no `RETURNING`) and the
/// cases are looked up by identity after it: one search of the unique
/// `(project_id, identity)` index per identity, also once the table has
/// statistics that say it is small.
#[tokio::test]
async fn test_cases_are_looked_up_by_their_unique_index() {
    let app = TestApp::new().await;
    let q = "EXPLAIN QUERY PLAN SELECT id, identity FROM test_cases \
             WHERE project_id = 1 AND identity IN ('a', 'b', 'c')";
    for stats in [false, true] {
        if stats {
            sqlx::query("ANALYZE")
                .execute(&app.state.db.write)
                .await
                .unwrap();
        }
        let plan = query_plan(&app, q).await;
        assert!(
            plan.iter().any(|d| d.contains(
                "SEARCH test_cases USING COVERING INDEX sqlite_autoindex_test_cases_1 (project_id=? AND identity=?)"
            )),
            "statistics: {stats}: {plan:#?}"
        );
    }
}

/// The case filter reads a case's labels from the JSON in its row (label
/// rows are no longer written; migration 0026 dropped their table on
/// SQLite): a label matches by its name in any case and its exact value, the
/// filter's own spaces trimmed, and values JSON escapes (quotes, non-ASCII)
/// match as they were sent.
#[tokio::test]
async fn the_case_filter_matches_the_labels_in_the_case_row() {
    let app = TestApp::new().await;
    labels_filtered(&app).await;
    let tables = column(
        &app,
        "SELECT name FROM sqlite_master WHERE name = 'test_case_labels'",
        "name",
    )
    .await;
    assert!(tables.is_empty(), "{tables:?}");
}

#[tokio::test]
async fn the_case_filter_matches_the_labels_in_the_case_row_on_postgres() {
    let Some(cluster) = super::pg::PgCluster::start() else {
        return;
    };
    let app = TestApp::on_postgres(&cluster, "labels").await;
    labels_filtered(&app).await;
    // Migration 0032 dropped the label rows' table here too, and the (job
    // run, test key) index the latest attempts no longer read (0027), both
    // kept until then for replicas of earlier versions.
    let left = column(
        &app,
        "SELECT CAST(relname AS TEXT) AS name FROM pg_class \
         WHERE relname IN ('test_case_labels', 'test_results_run_key')",
        "name",
    )
    .await;
    assert!(left.is_empty(), "{left:?}");
    app.state.db.write.close().await;
    drop(cluster);
}

async fn labels_filtered(app: &TestApp) {
    let db = &app.state.db;
    let project = app.create_project("labels").await;
    let label = |n: &str, v: &str| api::LabelDto {
        name: n.into(),
        value: v.into(),
    };
    let case = |identity: &str, labels: Vec<api::LabelDto>| {
        db::test_cases::CaseFacts::new(
            identity.into(),
            None,
            identity.into(),
            None,
            &labels,
            "passed",
        )
    };
    let quoted = "he said \"hi\" \u{fc}\\";
    let facts = [
        case("full:c1", vec![label("Suite", "smoke"), label("tag", "a")]),
        case("full:c2", vec![label("suite", "smoke-extra")]),
        case("full:c3", vec![label("suite", "x"), label("tag", "smoke")]),
        case("full:c4", vec![label("suite", quoted)]),
        case("full:c5", vec![label("SUITE", "smoke")]),
    ];
    let updates: Vec<&db::test_cases::CaseFacts> = facts.iter().collect();
    {
        let mut conn = db.write.acquire().await.unwrap();
        db::test_cases::upsert_cases(&mut conn, project, &updates)
            .await
            .unwrap();
    }
    let found = |labels: Vec<api::LabelDto>| async move {
        let filter = api::TestCaseFilter {
            labels,
            ..Default::default()
        };
        let (cases, total) = db::test_cases::list_cases(db, project, &filter, None)
            .await
            .unwrap();
        let names: Vec<String> = cases.into_iter().map(|c| c.name).collect();
        assert_eq!(total as usize, names.len());
        names
    };
    assert_eq!(
        found(vec![label("suite", "smoke")]).await,
        ["full:c1", "full:c5"]
    );
    assert_eq!(
        found(vec![label(" sUITE ", " smoke ")]).await,
        ["full:c1", "full:c5"]
    );
    assert_eq!(found(vec![label("tag", "smoke")]).await, ["full:c3"]);
    assert_eq!(found(vec![label("suite", quoted)]).await, ["full:c4"]);
    assert_eq!(
        found(vec![label("suite", "smoke"), label("tag", "a")]).await,
        ["full:c1"]
    );
    assert!(found(vec![label("suite", "smok")]).await.is_empty());
}

/// The steps of an `EXPLAIN QUERY PLAN` on the app's database.
async fn query_plan(app: &TestApp, explain: &str) -> Vec<String> {
    column(app, explain, "detail").await
}

/// The text column `name` of every row `sql` selects on the app's database.
async fn column(app: &TestApp, sql: &str, name: &str) -> Vec<String> {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_all(&app.state.db.read)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String, _>(name).unwrap())
        .collect()
}
