//! Reruns into the same launch through the API: the selection (status,
//! labels, results), one job run per job planned with exactly its selected
//! tests, prerequisites as for a plan run, tests no job can run listed
//! (manual, a job without integration), the TestOps forms, the rerun summary,
//! and adding a run's scope to an open launch (`launchId`).

use axum::http::Method;
use serde_json::{json, Value};

use super::{TestApp, ADMIN};

fn result(uuid: &str, name: &str, status: &str, tag: Option<&str>) -> Value {
    let labels: Vec<Value> = tag
        .map(|t| json!({"name": "tag", "value": t}))
        .into_iter()
        .collect();
    json!({
        "uuid": uuid, "name": name, "fullName": format!("suite#{name}"),
        "historyId": format!("h-{name}"), "status": status, "labels": labels,
        "start": 1_000, "stop": 1_010,
    })
}

/// Uploads into a job run of `job` (started by uid, or joined by id);
/// answers `(job, job run, result ids)`.
async fn upload(
    app: &TestApp,
    job: &str,
    run: Value,
    launch: Option<i64>,
    results: Vec<Value>,
) -> (i64, i64, Vec<i64>) {
    let mut start = json!({"projectId": 1, "job": {"uid": job}, "jobRun": run});
    if let Some(l) = launch {
        start["launch"] = json!({"id": l});
    }
    let started = app
        .post("/api/upload/start", ADMIN, &start)
        .await
        .expect(200);
    let job_run = started.id("jobRunId");
    let session = app
        .post("/api/upload/session", ADMIN, &json!({"jobRunId": job_run}))
        .await
        .expect(200)
        .id("id");
    let ids = app.upload_results(ADMIN, session, &results).await;
    (started.id("jobId"), job_run, ids)
}

async fn configure(app: &TestApp, job: i64, can_run: bool) {
    app.json(
        Method::PATCH,
        &format!("/api/job/{job}"),
        ADMIN,
        &json!({"canRunTests": can_run, "integration": {"type": "command", "command": "true"}}),
    )
    .await
    .expect(200);
}

async fn plan_selectors(app: &TestApp, job_run: i64) -> Vec<String> {
    let plan = app
        .get(&format!("/api/jobrun/{job_run}/plan"), ADMIN)
        .await
        .expect(200);
    plan.body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["selector"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_rerun_adds_one_job_run_per_job_to_the_same_launch() {
    rerun_story(TestApp::new().await).await;
}

#[tokio::test]
async fn a_rerun_adds_one_job_run_per_job_to_the_same_launch_on_postgresql() {
    let Some(cluster) = super::pg::PgCluster::start() else {
        return;
    };
    rerun_story(TestApp::on_postgres(&cluster, "reruns").await).await;
    drop(cluster);
}

async fn rerun_story(app: TestApp) {
    // One launch: `shop-ci` ran a (passed), b (failed, smoke) and c (broken);
    // `docs-ci` ran d (failed) and never gets an integration; e is manual.
    let (shop, shop_run, shop_ids) = upload(
        &app,
        "shop-ci",
        json!({"uid": "ci-1"}),
        None,
        vec![
            result("a1", "a", "passed", None),
            result("b1", "b", "failed", Some("smoke")),
            result("c1", "c", "broken", None),
        ],
    )
    .await;
    let launch = app
        .get(&format!("/api/jobrun/{shop_run}"), ADMIN)
        .await
        .expect(200)
        .id("launchId");
    upload(
        &app,
        "docs-ci",
        json!({"uid": "ci-1"}),
        Some(launch),
        vec![result("d1", "d", "failed", None)],
    )
    .await;
    app.post(
        &format!("/api/launch/{launch}/manual"),
        ADMIN,
        &json!({"results": [{"name": "e", "status": "failed"}]}),
    )
    .await
    .expect(200);
    let rerun = format!("/api/launch/{launch}/rerun");

    // A rerun names its tests; unknown statuses and empty matches are 400.
    let r = app.post(&rerun, ADMIN, &json!({})).await.expect(400);
    assert!(r.message().contains("--failed"), "{}", r.message());
    let r = app
        .post(&rerun, ADMIN, &json!({"status": ["weird"]}))
        .await
        .expect(400);
    assert!(r.message().contains("status[0]"), "{}", r.message());
    let r = app
        .post(&rerun, ADMIN, &json!({"status": ["skipped"]}))
        .await
        .expect(400);
    assert!(r.message().contains("matches no test"), "{}", r.message());

    // No job has an integration yet: nothing runs, every test is listed.
    let r = app
        .post(&rerun, ADMIN, &json!({"failed": true}))
        .await
        .expect(200);
    assert_eq!(r.body["jobRuns"], json!([]), "{}", r.body);
    let left: Vec<&str> = r.body["notRerunnable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["b", "c", "d", "e"], "{}", r.body);

    // Prerequisites as for a plan run, naming the job and the fix.
    app.post(&format!("/api/launch/{launch}/close"), ADMIN, &json!({}))
        .await
        .expect(204);
    configure(&app, shop, false).await;
    let r = app
        .post(&rerun, ADMIN, &json!({"failed": true}))
        .await
        .expect(409);
    assert_eq!(r.code(), Some("prerequisite_missing"));
    assert!(
        r.message()
            .contains(&format!("job configure {shop} --can-run-tests true")),
        "{}",
        r.message()
    );
    configure(&app, shop, true).await;

    // By label: only b, in a new job run of shop-ci in the same launch,
    // which is reopened.
    let r = app
        .post(
            &rerun,
            ADMIN,
            &json!({"labels": [{"name": "tag", "value": "smoke"}], "requestId": "req-1"}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["launchId"], launch);
    assert_eq!(r.body["reopened"], true, "{}", r.body);
    assert_eq!(r.body["jobRuns"].as_array().unwrap().len(), 1);
    let first = &r.body["jobRuns"][0]["jobRun"];
    assert_eq!(first["job"]["id"], shop);
    assert_eq!(first["launchId"], launch);
    assert_eq!(first["stage"], "scheduled", "{}", r.body);
    let first = first["id"].as_i64().unwrap();
    assert_eq!(plan_selectors(&app, first).await, ["suite#b"]);
    // The same request again (a client retry) adds nothing.
    let again = app
        .post(
            &rerun,
            ADMIN,
            &json!({"labels": [{"name": "tag", "value": "smoke"}], "requestId": "req-1"}),
        )
        .await
        .expect(200);
    assert_eq!(
        again.body["jobRuns"][0]["jobRun"]["id"], first,
        "{}",
        again.body
    );
    let runs = app
        .get(&format!("/api/launch/{launch}/job"), ADMIN)
        .await
        .expect(200);
    assert_eq!(runs.body.as_array().unwrap().len(), 3, "{}", runs.body);
    let r = app
        .post(&rerun, ADMIN, &json!({"failed": true, "requestId": "a b"}))
        .await
        .expect(400);
    assert!(r.message().contains("requestId"), "{}", r.message());
    let l = app
        .get(&format!("/api/launch/{launch}"), ADMIN)
        .await
        .expect(200);
    assert_eq!(l.body["closed"], false);
    assert_eq!(l.body["reruns"], json!({"rerun": 1, "changed": 0}));

    // The rerun reports: b passes now; its failed attempt stays.
    upload(
        &app,
        "shop-ci",
        json!({"id": first, "uid": "x"}),
        Some(launch),
        vec![result("b2", "b", "passed", Some("smoke"))],
    )
    .await;
    let stat = app
        .get(&format!("/api/launch/{launch}/statistic"), ADMIN)
        .await
        .expect(200);
    assert!(
        stat.body
            .as_array()
            .unwrap()
            .contains(&json!({"status": "passed", "count": 2})),
        "{}",
        stat.body
    );
    let l = app
        .get(&format!("/api/launch/{launch}"), ADMIN)
        .await
        .expect(200);
    assert_eq!(l.body["reruns"], json!({"rerun": 1, "changed": 1}));

    // --failed now: c only from shop-ci (b passed); d and e listed.
    let r = app
        .post(&rerun, ADMIN, &json!({"failed": true}))
        .await
        .expect(200);
    let runs = r.body["jobRuns"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{}", r.body);
    let second = runs[0]["jobRun"]["id"].as_i64().unwrap();
    assert_ne!(second, first);
    assert_eq!(plan_selectors(&app, second).await, ["suite#c"]);
    let left = r.body["notRerunnable"].as_array().unwrap();
    assert_eq!(left.len(), 2, "{}", r.body);
    assert_eq!(left[0]["name"], "d");
    assert!(left[0]["reason"]
        .as_str()
        .unwrap()
        .contains("no build-server integration"));
    assert_eq!(left[1]["name"], "e");
    assert!(left[1]["reason"].as_str().unwrap().contains("manual"));

    // TestOps forms: a job run's failed tests, and a selection of results.
    let r = app
        .post(
            &format!("/api/jobrun/{shop_run}/rerun"),
            ADMIN,
            &json!({"rql": "status in (\"failed\", \"broken\")"}),
        )
        .await
        .expect(202);
    let third = r.body["jobRuns"][0]["jobRun"]["id"].as_i64().unwrap();
    assert_eq!(plan_selectors(&app, third).await, ["suite#c"]);
    let r = app
        .post(
            "/api/testresult/bulk/rerun",
            ADMIN,
            &json!({"selection": {"launchId": launch, "leafsInclude": [shop_ids[0]]}}),
        )
        .await
        .expect(202);
    let fourth = r.body["jobRuns"][0]["jobRun"]["id"].as_i64().unwrap();
    assert_eq!(plan_selectors(&app, fourth).await, ["suite#a"]);
    let r = app
        .post(
            "/api/testresult/bulk/rerun",
            ADMIN,
            &json!({"selection": {"leafsInclude": [shop_ids[0]]}}),
        )
        .await
        .expect(400);
    assert!(r.message().contains("launchId"), "{}", r.message());

    // A run's scope added to this open launch, not a new launch (the job
    // is proven by another closed launch: plan runs keep their rule).
    let (_, other_run, _) = upload(
        &app,
        "shop-ci",
        json!({"uid": "ci-2"}),
        None,
        vec![result("a3", "a", "passed", None)],
    )
    .await;
    let other = app
        .get(&format!("/api/jobrun/{other_run}"), ADMIN)
        .await
        .expect(200)
        .id("launchId");
    app.post(&format!("/api/launch/{other}/close"), ADMIN, &json!({}))
        .await
        .expect(204);
    let c = super::planned::case_id_by_name(&app, "a").await;
    let before = app.get("/api/launch?projectId=1", ADMIN).await.expect(200);
    let r = app
        .post(
            "/api/testcase/run",
            ADMIN,
            &json!({"projectId": 1, "testCaseIds": [c], "launchId": launch}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["launch"]["id"], launch, "{}", r.body);
    assert_eq!(r.body["jobRuns"].as_array().unwrap().len(), 1);
    let after = app.get("/api/launch?projectId=1", ADMIN).await.expect(200);
    assert_eq!(before.body["totalElements"], after.body["totalElements"]);
    app.post(&format!("/api/launch/{launch}/close"), ADMIN, &json!({}))
        .await
        .expect(204);
    let r = app
        .post(
            "/api/testcase/run",
            ADMIN,
            &json!({"projectId": 1, "testCaseIds": [c], "launchId": launch}),
        )
        .await
        .expect(409);
    assert_eq!(r.code(), Some("launch_closed"));
}
