//! Launches analysed together: comparing two launches test by test (matched by
//! test-case identity whichever job ran them) and combining launches of
//! different pipelines into a new one that leaves its sources as they were.

use serde_json::{json, Value};

use super::{TestApp, ADMIN};

/// Starts a job run (a new launch unless `launch` is given); answers
/// `(launch id, job run id)`.
async fn start(
    app: &TestApp,
    token: &str,
    project: i64,
    job: &str,
    launch: Option<i64>,
) -> (i64, i64) {
    let r = app
        .start_job_run(token, project, job, &format!("{job}-1"), launch)
        .await;
    (r.id("launchId"), r.id("jobRunId"))
}

/// Uploads results `(uuid, fullName, status, start)` into a job run (the
/// historyId is the fullName: the same test twice is two attempts); answers
/// the result ids.
async fn upload(
    app: &TestApp,
    token: &str,
    job_run: i64,
    results: &[(&str, &str, &str, i64)],
) -> Vec<i64> {
    let session = app
        .post("/api/upload/session", token, &json!({"jobRunId": job_run}))
        .await
        .expect(200)
        .id("id");
    let results: Vec<Value> = results
        .iter()
        .map(|(uuid, full, status, start)| {
            json!({"uuid": uuid, "historyId": full, "name": full, "fullName": format!("shop.{full}"),
                   "status": status, "start": start, "stop": start + 5})
        })
        .collect();
    app.upload_results(token, session, &results).await
}

fn names(cmp: &Value, category: &str) -> Vec<String> {
    cmp["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["category"] == category)
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

fn test<'a>(cmp: &'a Value, name: &str) -> &'a Value {
    cmp["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no test {name} in {cmp}"))
}

#[tokio::test]
async fn compare_two_pipelines_launches_by_test_case_identity() {
    let app = TestApp::new().await;
    let (base, base_run) = start(&app, ADMIN, 1, "nightly-linux", None).await;
    upload(
        &app,
        ADMIN,
        base_run,
        &[
            ("b1", "total", "passed", 100),
            ("b2", "refund", "failed", 100),
            ("b3", "coupon", "failed", 100),
            ("b4", "legacy", "passed", 100),
            ("b5", "cart", "passed", 100),
            ("b6", "search", "passed", 100),
            ("b7", "login", "passed", 100),
        ],
    )
    .await;
    // Another pipeline, two jobs: `login` runs in both.
    let (head, gh_run) = start(&app, ADMIN, 1, "release-gitlab", None).await;
    let (_, win_run) = start(&app, ADMIN, 1, "release-windows", Some(head)).await;
    upload(
        &app,
        ADMIN,
        gh_run,
        &[
            ("h1", "total", "failed", 200),
            ("h2", "refund", "passed", 200),
            ("h3", "coupon", "broken", 200),
            ("h5", "cart", "passed", 200),
            ("h6", "search", "failed", 200),
            ("h6b", "search", "passed", 210),
            ("h8", "export", "passed", 200),
            ("h7", "login", "passed", 200),
        ],
    )
    .await;
    upload(&app, ADMIN, win_run, &[("w7", "login", "failed", 200)]).await;

    let cmp = app
        .get(
            &format!("/api/launch/compare?base={base}&head={head}"),
            ADMIN,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(cmp["base"]["id"], base);
    assert_eq!(cmp["head"]["id"], head);
    assert_eq!(
        cmp["summary"],
        json!({"newFailures": 2, "fixed": 1, "stillFailing": 1, "added": 1, "removed": 1,
               "unchanged": 2, "flaky": 1}),
        "{cmp}"
    );
    assert_eq!(names(&cmp, "newFailure"), ["login", "total"]);
    assert_eq!(names(&cmp, "fixed"), ["refund"]);
    assert_eq!(names(&cmp, "stillFailing"), ["coupon"]);
    assert_eq!(names(&cmp, "added"), ["export"]);
    assert_eq!(names(&cmp, "removed"), ["legacy"]);
    // Unchanged tests are counted, not listed, unless flaky.
    assert_eq!(names(&cmp, "unchanged"), ["search"]);
    // The same test run by two jobs: each job's outcome.
    let login = test(&cmp, "login");
    assert_eq!(login["identity"], "full:shop.login");
    let outcomes: Vec<(&str, &str)> = login["head"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["job"].as_str().unwrap(), o["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [("release-gitlab", "passed"), ("release-windows", "failed")]
    );
    assert_eq!(login["base"][0]["job"], "nightly-linux");
    // Flaky: failed, then passed on the retry of the same job.
    let search = test(&cmp, "search");
    assert_eq!(search["flaky"], true);
    assert_eq!(search["head"][0]["attempts"], json!(["failed", "passed"]));
    assert_eq!(search["head"][0]["status"], "passed");

    // Reversed, the categories swap.
    let back = app
        .get(
            &format!("/api/launch/compare?base={head}&head={base}"),
            ADMIN,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(back["summary"]["fixed"], 2);
    assert_eq!(back["summary"]["added"], 1);
    assert_eq!(names(&back, "added"), ["legacy"]);

    // Bad input: 400 naming the field.
    let r = app
        .get(&format!("/api/launch/compare?base={base}"), ADMIN)
        .await
        .expect(400);
    assert!(r.message().contains("head"), "{}", r.message());
    let r = app
        .get("/api/launch/compare?base=x&head=1", ADMIN)
        .await
        .expect(400);
    assert!(r.message().contains("base"), "{}", r.message());
    app.get(
        &format!("/api/launch/compare?base={base}&head=999999"),
        ADMIN,
    )
    .await
    .expect(404);
}

async fn counts(app: &TestApp, launch: i64) -> Value {
    app.get(&format!("/api/launch/{launch}/statistic"), ADMIN)
        .await
        .expect(200)
        .body
}

/// Everything a launch shows: statistic, results with attachments, job runs.
async fn snapshot(app: &TestApp, launch: i64) -> String {
    let launch_dto = app
        .get(&format!("/api/launch/{launch}"), ADMIN)
        .await
        .expect(200)
        .body;
    let results = app
        .get(
            &format!("/api/testresult?launchId={launch}&size=1000"),
            ADMIN,
        )
        .await
        .expect(200)
        .body;
    let mut attachments = Vec::new();
    for r in results["content"].as_array().unwrap() {
        let one = app
            .get(&format!("/api/testresult/{}", r["id"]), ADMIN)
            .await
            .expect(200)
            .body;
        attachments.push(one["attachments"].clone());
    }
    let runs = app
        .get(&format!("/api/launch/{launch}/job"), ADMIN)
        .await
        .expect(200)
        .body;
    format!(
        "{} {} {} {:?} {}",
        launch_dto["closed"],
        counts(app, launch).await,
        results["content"],
        attachments,
        runs
    )
}

#[tokio::test]
async fn combine_two_pipelines_launches_then_delete_the_combined_one() {
    combine_story(&TestApp::new().await).await;
}

/// The same story on PostgreSQL (the copy statements in the other dialect),
/// compare included.
#[tokio::test]
async fn combine_and_compare_on_postgresql() {
    let Some(cluster) = super::pg::PgCluster::start() else {
        return;
    };
    let app = TestApp::on_postgres(&cluster, "combine").await;
    combine_story(&app).await;
    drop(app);
    drop(cluster);
}

async fn combine_story(app: &TestApp) {
    let (a, a_run) = start(app, ADMIN, 1, "pipeline-a", None).await;
    let ids = upload(
        app,
        ADMIN,
        a_run,
        &[
            ("a1", "total", "passed", 1),
            ("a2", "refund", "failed", 1),
            ("a2r", "refund", "passed", 9),
        ],
    )
    .await;
    app.upload(
        &format!("/api/upload/test-result/{}/attachment", ids[0]),
        ADMIN,
        "log.txt",
        "the shared log",
    )
    .await
    .expect(202);
    let (b, b_run) = start(app, ADMIN, 1, "pipeline-b", None).await;
    // The same uuid as in launch a: kept apart in the combined launch.
    upload(
        app,
        ADMIN,
        b_run,
        &[
            ("a1", "total", "failed", 2),
            ("b2", "export", "skipped", 2),
            ("b3", "cart", "passed", 2),
        ],
    )
    .await;
    for l in [a, b] {
        app.post(&format!("/api/launch/{l}/close"), ADMIN, &json!({}))
            .await;
    }
    let before_a = snapshot(app, a).await;
    let before_b = snapshot(app, b).await;
    let blobs = stored_blobs(app).await;
    assert_eq!(blobs.len(), 1, "{blobs:?}");

    let combined = app
        .post(
            "/api/launch/combine",
            ADMIN,
            &json!({"launchIds": [a, b], "name": "release 2.0 (all pipelines)"}),
        )
        .await
        .expect(200)
        .body;
    let c = combined["id"].as_i64().unwrap();
    assert_eq!(combined["name"], "release 2.0 (all pipelines)");
    assert_eq!(combined["closed"], true);
    assert_eq!(combined["combinedFrom"], json!([a, b]));

    // Counts add up exactly: 2 + 3 tests (retries stay attempts), 3 + 3 results.
    assert_eq!(
        counts(app, c).await,
        json!([{"status": "passed", "count": 3}, {"status": "failed", "count": 1},
               {"status": "skipped", "count": 1}])
    );
    let results = app
        .get(&format!("/api/testresult?launchId={c}&size=1000"), ADMIN)
        .await
        .expect(200)
        .body;
    assert_eq!(results["content"].as_array().unwrap().len(), 6);
    // Each source's job run kept as a job run.
    let runs = app
        .get(&format!("/api/launch/{c}/job"), ADMIN)
        .await
        .expect(200)
        .body;
    let mut jobs: Vec<(&str, i64)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["job"]["name"].as_str().unwrap(),
                r["resultCount"].as_i64().unwrap(),
            )
        })
        .collect();
    jobs.sort();
    assert_eq!(jobs, [("pipeline-a", 3), ("pipeline-b", 3)], "{runs}");
    // The attachment is shared: readable from the copy, no new blob file.
    let copy = results["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "total" && r["status"] == "passed")
        .unwrap();
    let copy = app
        .get(&format!("/api/testresult/{}", copy["id"]), ADMIN)
        .await
        .expect(200)
        .body;
    let att = copy["attachments"][0]["id"].as_i64().unwrap();
    let content = app
        .get(&format!("/api/attachment/{att}/content"), ADMIN)
        .await
        .expect(200);
    assert_eq!(content.body, "the shared log");
    assert_eq!(stored_blobs(app).await, blobs, "no bytes copied");

    // The sources are unchanged and link to the combined launch.
    assert_eq!(
        snapshot(app, a)
            .await
            .replace(&format!(",\"combinedInto\":[{c}]"), ""),
        before_a
    );
    assert_eq!(
        snapshot(app, b)
            .await
            .replace(&format!(",\"combinedInto\":[{c}]"), ""),
        before_b
    );
    let src = app
        .get(&format!("/api/launch/{a}"), ADMIN)
        .await
        .expect(200)
        .body;
    assert_eq!(src["combinedInto"], json!([c]));

    // The combined launch compares like any other.
    let cmp = app
        .get(&format!("/api/launch/compare?base={a}&head={c}"), ADMIN)
        .await
        .expect(200)
        .body;
    assert_eq!(cmp["summary"]["added"], 2, "{cmp}");

    // Deleting the combined launch leaves every source result and attachment.
    app.send(
        axum::http::Method::DELETE,
        &format!("/api/launch/{c}"),
        Some(ADMIN),
        None,
        Vec::new(),
    )
    .await
    .expect(200);
    assert_eq!(snapshot(app, a).await, before_a);
    assert_eq!(snapshot(app, b).await, before_b);
    assert_eq!(stored_blobs(app).await, blobs);
    let content = app
        .get(
            &format!("/api/attachment/{}/content", att_of(app, ids[0]).await),
            ADMIN,
        )
        .await
        .expect(200);
    assert_eq!(content.body, "the shared log");
}

async fn att_of(app: &TestApp, result: i64) -> i64 {
    app.get(&format!("/api/testresult/{result}"), ADMIN)
        .await
        .expect(200)
        .body["attachments"][0]["id"]
        .as_i64()
        .unwrap()
}

/// Every stored blob: the blob store's files, and the small blobs kept in
/// the database.
async fn stored_blobs(app: &TestApp) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p.display().to_string());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(app._dir.path(), &mut out);
    out.retain(|p| p.contains("/blobs/"));
    for (sha, _) in crate::db::small_blobs::sizes(&app.state.db).await.unwrap() {
        out.push(format!("small_blobs:{sha}"));
    }
    out.sort();
    out
}

#[tokio::test]
async fn compare_and_combine_stay_in_the_callers_project() {
    let app = TestApp::new().await;
    let own = app.create_project("Second").await;
    let token = app.project_token(own).await;
    let (foreign, _) = start(&app, ADMIN, 1, "foreign", None).await;
    let (mine, run) = start(&app, &token, own, "mine", None).await;
    upload(&app, &token, run, &[("m1", "total", "passed", 1)]).await;
    let (mine2, _) = start(&app, &token, own, "mine-too", None).await;

    // Another project's launch answers 404, whichever side names it.
    for q in [
        format!("base={foreign}&head={mine}"),
        format!("base={mine}&head={foreign}"),
    ] {
        let r = app
            .get(&format!("/api/launch/compare?{q}"), &token)
            .await
            .expect(404);
        assert_eq!(r.code(), Some("not_found"));
    }
    app.get(
        &format!("/api/launch/compare?base={mine}&head={mine2}"),
        &token,
    )
    .await
    .expect(200);
    let r = app
        .post(
            "/api/launch/combine",
            &token,
            &json!({"launchIds": [mine, foreign], "name": "x"}),
        )
        .await
        .expect(404);
    assert_eq!(r.code(), Some("not_found"));
    // Nothing was created in either project.
    let list = app
        .get(&format!("/api/launch?projectId={own}"), &token)
        .await
        .expect(200)
        .body;
    assert_eq!(list["totalElements"], 2, "{list}");
    // Bad requests name the field.
    let r = app
        .post(
            "/api/launch/combine",
            &token,
            &json!({"launchIds": [mine, mine], "name": "x"}),
        )
        .await
        .expect(400);
    assert!(r.message().contains("launchIds"), "{}", r.message());
    let r = app
        .post(
            "/api/launch/combine",
            &token,
            &json!({"launchIds": [mine, mine2], "name": " "}),
        )
        .await
        .expect(400);
    assert!(r.message().contains("name"), "{}", r.message());
    // An admin cannot mix projects either.
    let r = app
        .post(
            "/api/launch/combine",
            ADMIN,
            &json!({"launchIds": [mine, foreign], "name": "x"}),
        )
        .await
        .expect(400);
    assert!(r.message().contains("projects"), "{}", r.message());
    // The project's own combine works with its token.
    let c = app
        .post(
            "/api/launch/combine",
            &token,
            &json!({"launchIds": [mine, mine2], "name": "both"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(c["projectId"], own);
}

/// Two runs of one pipeline (the same job) combined: its tests stay two tests
/// each (the counts add up), attempts within one source stay attempts.
#[tokio::test]
async fn combining_two_runs_of_one_job_keeps_both_runs_tests() {
    let app = TestApp::new().await;
    let mut launches = Vec::new();
    for run in ["101", "102"] {
        let r = app
            .post(
                "/api/upload/start",
                ADMIN,
                &json!({"projectId": 1, "job": {"uid": "nightly"}, "jobRun": {"uid": run},
                        "launch": {"name": format!("nightly {run}")}}),
            )
            .await
            .expect(200);
        upload(
            &app,
            ADMIN,
            r.id("jobRunId"),
            &[
                (&format!("{run}-a"), "total", "failed", 1),
                (&format!("{run}-b"), "total", "passed", 5),
                (&format!("{run}-c"), "cart", "passed", 1),
            ],
        )
        .await;
        launches.push(r.id("launchId"));
    }
    let c = app
        .post(
            "/api/launch/combine",
            ADMIN,
            &json!({"launchIds": launches, "name": "both nightlies"}),
        )
        .await
        .expect(200)
        .id("id");
    assert_eq!(
        counts(&app, c).await,
        json!([{"status": "passed", "count": 4}])
    );
    let cmp = app
        .get(
            &format!("/api/launch/compare?base={}&head={c}", launches[0]),
            ADMIN,
        )
        .await
        .expect(200)
        .body;
    // Matched by identity: one test with an outcome per source run.
    let total = test(&cmp, "total");
    assert_eq!(total["head"].as_array().unwrap().len(), 2, "{total}");
    assert_eq!(total["flaky"], true);
}
