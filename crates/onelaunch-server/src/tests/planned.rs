//! The planned scope of a server-led launch: a job run's test plan names a
//! case without a numeric `ALLURE_ID` by selector only (its internal id would
//! select an unrelated test carrying that `ALLURE_ID`), the launch and the job
//! run say how many planned tests were reported and which are missing, and a
//! job run that finishes with planned tests missing is not `passed`.

use serde_json::{json, Value};

use super::{TestApp, ADMIN};

fn result(uuid: &str, name: &str, allure_id: Option<&str>) -> Value {
    let labels: Vec<Value> = allure_id
        .map(|a| json!({"name": "ALLURE_ID", "value": a}))
        .into_iter()
        .collect();
    json!({
        "uuid": uuid,
        "name": name,
        "fullName": format!("suite#{name}"),
        "status": "passed",
        "labels": labels,
        "start": 1_000,
        "stop": 1_010,
    })
}

/// Uploads `results` into a job run (started by id, or by uids when `None`).
async fn upload(app: &TestApp, job_run: Option<i64>, results: Vec<Value>) -> (i64, i64) {
    let run = match job_run {
        Some(id) => json!({"id": id, "uid": "x"}),
        None => json!({"uid": "learn-1"}),
    };
    let started = app
        .post(
            "/api/upload/start",
            ADMIN,
            &json!({"projectId": 1, "job": {"uid": "shop-ci"}, "jobRun": run}),
        )
        .await
        .expect(200);
    let job_run = started.id("jobRunId");
    let session = app
        .post("/api/upload/session", ADMIN, &json!({"jobRunId": job_run}))
        .await
        .expect(200)
        .id("id");
    app.post(
        "/api/upload/test-result",
        ADMIN,
        &json!({"testSessionId": session, "results": results}),
    )
    .await
    .expect(200);
    (started.id("jobId"), job_run)
}

async fn stop(app: &TestApp, job_run: i64) -> String {
    app.post(
        "/api/upload/stop",
        ADMIN,
        &json!({"projectId": 1, "jobRunId": job_run}),
    )
    .await
    .expect(200);
    let run = app
        .get(&format!("/api/jobrun/{job_run}"), ADMIN)
        .await
        .expect(200);
    run.body["status"].as_str().unwrap().to_string()
}

/// Test case ids by name.
pub(super) async fn case_id_by_name(app: &TestApp, name: &str) -> i64 {
    case_id(app, name).await
}

async fn case_id(app: &TestApp, name: &str) -> i64 {
    let cases = app
        .get("/api/testcase?projectId=1&size=100", ADMIN)
        .await
        .expect(200);
    cases.body["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no test case {name}: {}", cases.body))["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn planned_scope_is_kept_shown_and_decides_the_status() {
    let app = TestApp::new().await;
    // CI-led history: `with_id` has ALLURE_ID 7, `no_id` has none; then a
    // test whose ALLURE_ID equals `no_id`'s internal case id.
    let (job, _) = upload(
        &app,
        None,
        vec![
            result("u1", "with_id", Some("7")),
            result("u2", "no_id", None),
        ],
    )
    .await;
    let no_id = case_id(&app, "no_id").await;
    let with_id = case_id(&app, "with_id").await;
    upload(
        &app,
        None,
        vec![result("u3", "impostor", Some(&no_id.to_string()))],
    )
    .await;
    // A job counts as proven once a launch it reported into is closed.
    app.post("/api/launch/1/close", ADMIN, &json!({}))
        .await
        .expect(204);

    app.json(
        axum::http::Method::PATCH,
        &format!("/api/job/{job}"),
        ADMIN,
        &json!({"canRunTests": true, "integration": {"type": "command", "command": "true"}}),
    )
    .await
    .expect(200);
    let run = app
        .post(
            "/api/testcase/run",
            ADMIN,
            &json!({"projectId": 1, "testCaseIds": [with_id, no_id], "launchName": "planned"}),
        )
        .await
        .expect(200);
    let launch = run.body["launch"]["id"].as_i64().unwrap();
    let job_run = run.body["jobRuns"][0]["jobRun"]["id"].as_i64().unwrap();
    assert_eq!(
        run.body["launch"]["planned"],
        json!({"planned": 2, "reported": 0, "missing": [
            {"testCaseId": with_id, "name": "with_id", "jobRunId": job_run},
            {"testCaseId": no_id, "name": "no_id", "jobRunId": job_run},
        ]})
    );

    // The plan: `id` only where the case has its own numeric ALLURE_ID.
    let plan = app
        .get(&format!("/api/jobrun/{job_run}/plan"), ADMIN)
        .await
        .expect(200);
    assert_eq!(
        plan.body,
        json!([{"id": 7, "selector": "suite#with_id"}, {"selector": "suite#no_id"}])
    );

    // The job reports one of its two planned tests and finishes: not passed.
    upload(
        &app,
        Some(job_run),
        vec![result("r1", "with_id", Some("7"))],
    )
    .await;
    let missing = json!({"planned": 2, "reported": 1, "missing": [
        {"testCaseId": no_id, "name": "no_id", "jobRunId": job_run},
    ]});
    let l = app
        .get(&format!("/api/launch/{launch}"), ADMIN)
        .await
        .expect(200);
    assert_eq!(l.body["planned"], missing);
    let r = app
        .get(&format!("/api/jobrun/{job_run}"), ADMIN)
        .await
        .expect(200);
    assert_eq!(r.body["planned"], missing);
    let runs = app
        .get(&format!("/api/launch/{launch}/job"), ADMIN)
        .await
        .expect(200);
    assert_eq!(runs.body[0]["planned"], missing);
    assert_eq!(stop(&app, job_run).await, "broken");

    // The web UI says the same on the launch page and the job-run page.
    let session = super::tokens::ui_login(&app, ADMIN).await;
    for page in [format!("/launch/{launch}"), format!("/jobrun/{job_run}")] {
        let (status, _, html) =
            super::tokens::ui(&app, axum::http::Method::GET, &page, &session, "").await;
        assert_eq!(status, 200, "{page}");
        assert!(
            html.contains("1 of 2 planned tests reported"),
            "{page}: {html}"
        );
        let listed = html
            .split("Planned tests not reported")
            .nth(1)
            .unwrap_or_else(|| panic!("{page} lists no missing test: {html}"));
        assert!(listed.contains("no_id"), "{page}: {listed}");
        assert!(!listed.split("</ul>").next().unwrap().contains("with_id"));
    }

    // The missing test arrives: every planned test reported, the job run passes.
    upload(&app, Some(job_run), vec![result("r2", "no_id", None)]).await;
    let l = app
        .get(&format!("/api/launch/{launch}"), ADMIN)
        .await
        .expect(200);
    assert_eq!(
        l.body["planned"],
        json!({"planned": 2, "reported": 2, "missing": []})
    );
    assert_eq!(stop(&app, job_run).await, "passed");

    // A CI-led launch has no planned scope.
    let first = app.get("/api/launch/1", ADMIN).await.expect(200);
    assert!(first.body.get("planned").is_none(), "{}", first.body);
    let ci_run = app.get("/api/launch/1/job", ADMIN).await.expect(200);
    assert!(ci_run.body[0].get("planned").is_none());
}
