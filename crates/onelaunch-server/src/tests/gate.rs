//! The launch-wide quality gate over HTTP: project rules (admin only), the
//! caller's stricter rules, the verdict stored at close and cleared at
//! reopen, new failures against the previous launch of the same name, and
//! the Allure 3 plugin's failed rules.

use axum::http::Method;
use serde_json::{json, Value};

use super::{TestApp, ADMIN};

async fn start(app: &TestApp, run: &str, launch: Value) -> (i64, i64) {
    let r = app
        .post(
            "/api/upload/start",
            ADMIN,
            &json!({"projectId": 1, "ci": {"type": "github"},
                    "job": {"uid": "acme/shop/ci", "name": "CI"},
                    "jobRun": {"uid": run, "name": run}, "launch": launch}),
        )
        .await
        .expect(200);
    (r.id("launchId"), r.id("jobRunId"))
}

async fn upload(app: &TestApp, job_run: i64, results: &[(&str, &str, &str, i64)]) {
    let session = app
        .post("/api/upload/session", ADMIN, &json!({"jobRunId": job_run}))
        .await
        .expect(200)
        .id("id");
    let results: Vec<Value> = results
        .iter()
        .map(|(uuid, name, status, start)| {
            json!({"uuid": uuid, "historyId": name, "name": name, "status": status,
                   "start": start, "stop": start + 1})
        })
        .collect();
    app.post(
        "/api/upload/test-result",
        ADMIN,
        &json!({"testSessionId": session, "results": results}),
    )
    .await
    .expect(200);
}

/// `GET /api/launch/{id}/gate` as `token` sees it.
async fn gate(app: &TestApp, launch: i64, token: &str) -> Value {
    app.get(&format!("/api/launch/{launch}/gate"), token)
        .await
        .expect(200)
        .body
}

fn outcome<'a>(report: &'a Value, rule: &str) -> &'a Value {
    report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} in {report}"))
}

#[tokio::test]
async fn project_rules_judge_the_launch_and_the_verdict_is_stored_at_close() {
    let app = TestApp::new().await;
    let token = app.project_token(1).await;

    // Only an admin sets a project's rules; its CI token reads them.
    let rules = json!({"maxFailures": 0, "minTests": 3});
    let refused = app
        .json(Method::PUT, "/api/project/1/gate", &token, &json!({}))
        .await
        .expect(403);
    assert_eq!(refused.code(), Some("forbidden"), "{}", refused.body);
    let bad = app
        .json(
            Method::PUT,
            "/api/project/1/gate",
            ADMIN,
            &json!({"minPassRate": 101}),
        )
        .await
        .expect(400);
    assert!(bad.message().contains("minPassRate"), "{}", bad.body);
    app.json(Method::PUT, "/api/project/1/gate", ADMIN, &rules)
        .await
        .expect(200);
    let read = app.get("/api/project/1/gate", &token).await.expect(200);
    assert_eq!(read.body, rules);

    let (launch, run) = start(&app, "1", json!({"name": "nightly"})).await;
    upload(
        &app,
        run,
        &[
            ("a", "login", "passed", 1),
            ("b", "checkout", "failed", 1),
            ("c", "search", "passed", 1),
        ],
    )
    .await;

    // Judged now: one failure breaks maxFailures; minTests holds.
    let now = gate(&app, launch, &token).await;
    assert_eq!(now["passed"], false, "{}", now);
    assert_eq!(now["launchClosed"], false);
    let o = outcome(&now, "maxFailures");
    assert_eq!(o["passed"], false);
    assert_eq!(o["actual"], "1 (failed 1, broken 0)");
    assert_eq!(o["details"], json!(["checkout"]));
    assert_eq!(outcome(&now, "minTests")["passed"], true);

    // The caller's rules make it stricter, never looser.
    let looser = app
        .post(
            &format!("/api/launch/{launch}/gate"),
            &token,
            &json!({"maxFailures": 5, "minTests": 10, "minPassRate": 50}),
        )
        .await
        .expect(200);
    assert_eq!(looser.body["rules"]["maxFailures"], 0);
    assert_eq!(looser.body["rules"]["minTests"], 10);
    assert_eq!(outcome(&looser.body, "minTests")["passed"], false);
    assert_eq!(
        outcome(&looser.body, "minPassRate")["actual"],
        "66.6% (2 passed of 3 that ran)"
    );
    assert_eq!(outcome(&looser.body, "minPassRate")["passed"], true);

    // Closed: the verdict is stored and shown on the launch.
    app.post(&format!("/api/launch/{launch}/close"), &token, &json!({}))
        .await
        .expect(204);
    let l = app
        .get(&format!("/api/launch/{launch}"), &token)
        .await
        .expect(200);
    assert_eq!(l.body["gatePassed"], false, "{}", l.body);
    let stored = gate(&app, launch, &token).await;
    assert_eq!(stored["launchClosed"], true);
    assert_eq!(stored["passed"], false);
    let list = app.get("/api/launch?projectId=1", &token).await.expect(200);
    assert_eq!(list.body["content"][0]["gatePassed"], false);

    // Reopened, the failing test passes on a re-run of the job: closed
    // again, the gate holds.
    app.post(&format!("/api/launch/{launch}/reopen"), &token, &json!({}))
        .await
        .expect(204);
    let l = app
        .get(&format!("/api/launch/{launch}"), &token)
        .await
        .expect(200);
    assert!(l.body.get("gatePassed").is_none(), "{}", l.body);
    let (_, rerun) = start(&app, "2", json!({"id": launch})).await;
    upload(&app, rerun, &[("b2", "checkout", "passed", 2)]).await;
    app.post(&format!("/api/launch/{launch}/close"), &token, &json!({}))
        .await
        .expect(204);
    let l = app
        .get(&format!("/api/launch/{launch}"), &token)
        .await
        .expect(200);
    assert_eq!(l.body["gatePassed"], true, "{}", l.body);
}

#[tokio::test]
async fn new_failures_are_tests_that_passed_in_the_previous_closed_launch_of_that_name() {
    let app = TestApp::new().await;
    let (first, run) = start(&app, "1", json!({"name": "release"})).await;
    upload(
        &app,
        run,
        &[("a1", "login", "passed", 1), ("b1", "search", "failed", 1)],
    )
    .await;
    app.post(&format!("/api/launch/{first}/close"), ADMIN, &json!({}))
        .await
        .expect(204);
    let (second, run) = start(&app, "2", json!({"name": "release"})).await;
    assert_ne!(first, second);
    upload(
        &app,
        run,
        &[("a2", "login", "failed", 5), ("b2", "search", "failed", 5)],
    )
    .await;
    let r = app
        .post(
            &format!("/api/launch/{second}/gate"),
            ADMIN,
            &json!({"noNewFailures": true}),
        )
        .await
        .expect(200);
    let o = outcome(&r.body, "noNewFailures");
    assert_eq!(o["passed"], false, "{}", r.body);
    assert_eq!(o["actual"], format!("1 against launch {first}"));
    assert_eq!(o["details"], json!(["login"]), "search failed before too");

    // The first launch of a name has nothing to compare with.
    let r = app
        .post(
            &format!("/api/launch/{first}/gate"),
            ADMIN,
            &json!({"noNewFailures": true}),
        )
        .await
        .expect(200);
    assert_eq!(outcome(&r.body, "noNewFailures")["passed"], true);
}

#[tokio::test]
async fn the_allure_plugins_failed_rules_are_kept_and_fail_the_gate() {
    let app = TestApp::new().await;
    let (launch, _) = start(&app, "1", json!({"name": "allure"})).await;
    let bad = app
        .post(
            "/api/launch/quality-gate/bulk",
            ADMIN,
            &json!({"launchId": launch, "items": [{"message": "no name"}]}),
        )
        .await
        .expect(400);
    assert!(bad.message().contains("items[0]"), "{}", bad.body);
    for _ in 0..2 {
        app.post(
            "/api/launch/quality-gate/bulk",
            ADMIN,
            &json!({"launchId": launch, "items": [
                {"name": "maxFailures", "message": "Max failures exceeded: 3 > 0"},
                {"name": "minTestsCount", "message": "too few", "namedEnvId": 4}]}),
        )
        .await
        .expect(200);
    }
    let r = gate(&app, launch, ADMIN).await;
    assert_eq!(r["passed"], false);
    assert_eq!(r["allure"].as_array().unwrap().len(), 2, "re-sent once");
    assert_eq!(r["allure"][0]["message"], "Max failures exceeded: 3 > 0");
    app.post(&format!("/api/launch/{launch}/close"), ADMIN, &json!({}))
        .await
        .expect(204);
    let l = app
        .get(&format!("/api/launch/{launch}"), ADMIN)
        .await
        .expect(200);
    assert_eq!(l.body["gatePassed"], false);
}

/// A plan's rules add to the project's: a launch run from the plan is judged
/// by the strictest value of each, and a plan cannot loosen its project.
#[tokio::test]
async fn a_plans_rules_judge_the_launches_it_creates_with_the_projects() {
    let app = TestApp::new().await;
    let token = app.project_token(1).await;
    // Learn two cases, prove the job (its launch closed), make it runnable.
    let (learned, run) = start(&app, "1", json!({"name": "learn"})).await;
    upload(
        &app,
        run,
        &[("l1", "login", "passed", 1), ("l2", "search", "passed", 1)],
    )
    .await;
    app.post(&format!("/api/launch/{learned}/close"), ADMIN, &json!({}))
        .await
        .expect(204);
    let job = app.get("/api/project/1/job", ADMIN).await.expect(200).body[0]["id"]
        .as_i64()
        .unwrap();
    app.json(
        Method::PATCH,
        &format!("/api/job/{job}"),
        ADMIN,
        &json!({"canRunTests": true, "integration": {"type": "command", "command": "true"}}),
    )
    .await
    .expect(200);
    let cases = vec![
        super::planned::case_id_by_name(&app, "login").await,
        super::planned::case_id_by_name(&app, "search").await,
    ];
    let plan = app
        .post(
            "/api/testplan",
            &token,
            &json!({"projectId": 1, "name": "release", "testCaseIds": cases}),
        )
        .await
        .expect(200)
        .id("id");

    app.json(
        Method::PUT,
        "/api/project/1/gate",
        ADMIN,
        &json!({"maxFailures": 0, "minTests": 1}),
    )
    .await
    .expect(200);
    // The plan (a project token may set it) asks for more, and tries to allow
    // failures: that part does not loosen the project's rule.
    app.json(
        Method::PUT,
        &format!("/api/testplan/{plan}/gate"),
        &token,
        &json!({"maxFailures": 10, "minTests": 2, "allPlanned": true}),
    )
    .await
    .expect(200);
    let read = app
        .get(&format!("/api/testplan/{plan}/gate"), &token)
        .await
        .expect(200);
    assert_eq!(read.body["allPlanned"], true);

    let run = app
        .post(
            &format!("/api/testplan/{plan}/run"),
            &token,
            &json!({"launchName": "release 2"}),
        )
        .await
        .expect(200);
    let launch = run.body["launch"]["id"].as_i64().unwrap();
    let job_run = run.body["jobRuns"][0]["jobRun"]["id"].as_i64().unwrap();
    let r = gate(&app, launch, &token).await;
    assert_eq!(r["rules"]["maxFailures"], 0, "{}", r);
    assert_eq!(r["rules"]["minTests"], 2);
    assert_eq!(r["rules"]["allPlanned"], true);
    assert_eq!(
        outcome(&r, "allPlanned")["actual"],
        "0 of 2 planned tests reported"
    );
    assert_eq!(outcome(&r, "allPlanned")["passed"], false);

    // The job reports both planned tests, one failing: closed, the verdict
    // names the failure only.
    upload(
        &app,
        job_run,
        &[("p1", "login", "passed", 5), ("p2", "search", "failed", 5)],
    )
    .await;
    app.post(&format!("/api/launch/{launch}/close"), &token, &json!({}))
        .await
        .expect(204);
    let r = gate(&app, launch, &token).await;
    assert_eq!(r["launchClosed"], true);
    assert_eq!(outcome(&r, "allPlanned")["passed"], true, "{}", r);
    assert_eq!(outcome(&r, "minTests")["passed"], true);
    assert_eq!(outcome(&r, "maxFailures")["passed"], false);
    assert_eq!(outcome(&r, "maxFailures")["details"], json!(["search"]));
}
