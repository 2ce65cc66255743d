//! The CI-led story through the HTTP API: start a job run, open a session,
//! upload results (twice: idempotent), read the statistic of latest attempts,
//! close the launch (uploads answer 409 `launch_closed`) and reopen it.

use serde_json::{json, Value};

use super::{TestApp, ADMIN};

fn start_body(run_uid: &str) -> Value {
    json!({
        "projectId": 1,
        "ci": {"type": "github"},
        "job": {"uid": "acme/shop/ci", "name": "CI"},
        "jobRun": {"uid": run_uid, "name": format!("run {run_uid}")},
        "launch": {"name": "nightly", "tags": ["smoke"]},
    })
}

fn result(uuid: &str, history: &str, status: &str, start: i64) -> Value {
    json!({
        "uuid": uuid,
        "historyId": history,
        "name": format!("test {history}"),
        "fullName": format!("shop.Tests#{history}"),
        "status": status,
        "start": start,
        "stop": start + 10,
    })
}

/// `(status, count)` pairs of a statistic answer.
fn statistic(body: &Value) -> Vec<(String, i64)> {
    body.as_array()
        .expect("statistic is a list")
        .iter()
        .map(|i| {
            (
                i["status"].as_str().unwrap().to_string(),
                i["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn result_count(app: &TestApp, launch: i64) -> i64 {
    app.get(
        &format!("/api/testresult?launchId={launch}&size=100"),
        ADMIN,
    )
    .await
    .expect(200)
    .id("totalElements")
}

#[tokio::test]
async fn ci_led_story_over_http() {
    let app = TestApp::new().await;

    // upload/start creates a launch and a job run; the same uids join them.
    let started = app
        .post("/api/upload/start", ADMIN, &start_body("run-1"))
        .await
        .expect(200);
    let (launch, job_run, job) = (
        started.id("launchId"),
        started.id("jobRunId"),
        started.id("jobId"),
    );
    assert_eq!(started.id("projectId"), 1);
    let again = app
        .post("/api/upload/start", ADMIN, &start_body("run-1"))
        .await
        .expect(200);
    assert_eq!(
        again.body, started.body,
        "the same uids join the same job run"
    );
    let l = app
        .get(&format!("/api/launch/{launch}"), ADMIN)
        .await
        .expect(200);
    assert_eq!(l.body["name"], "nightly");
    assert_eq!(l.body["closed"], false);
    let runs = app
        .get(&format!("/api/launch/{launch}/job"), ADMIN)
        .await
        .expect(200);
    let runs = runs.body.as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["id"], job_run);
    assert_eq!(runs[0]["job"]["id"], job);
    assert_eq!(runs[0]["externalId"], "run-1");

    // A session of the job run, in its launch.
    let session = app
        .post(
            "/api/upload/session",
            ADMIN,
            &json!({"jobRunId": job_run, "environment": [{"key": "os", "value": "linux"}]}),
        )
        .await
        .expect(200);
    assert_eq!(session.id("launchId"), launch);
    assert_eq!(session.id("jobRunId"), job_run);
    let session = session.id("id");

    // Results: test hb has two attempts, the later one passed.
    let batch = json!({
        "testSessionId": session,
        "results": [
            result("u-a", "ha", "passed", 1_000),
            result("u-b1", "hb", "failed", 1_000),
            result("u-b2", "hb", "passed", 2_000),
            result("u-c", "hc", "broken", 1_000),
        ],
    });
    let first = app
        .post("/api/upload/test-result", ADMIN, &batch)
        .await
        .expect(200);
    let ids = first.body["resultIds"].clone();
    assert_eq!(ids.as_array().unwrap().len(), 4);
    assert_eq!(first.body["results"][2]["uuid"], "u-b2");
    assert_eq!(result_count(&app, launch).await, 4);

    // The same uuids again: the same ids, nothing added.
    let second = app
        .post("/api/upload/test-result", ADMIN, &batch)
        .await
        .expect(200);
    assert_eq!(second.body["resultIds"], ids);
    assert_eq!(second.body["results"], first.body["results"]);
    assert_eq!(result_count(&app, launch).await, 4);

    // The statistic counts each test by its latest attempt.
    let stat = app
        .get(&format!("/api/launch/{launch}/statistic"), ADMIN)
        .await
        .expect(200);
    assert_eq!(
        statistic(&stat.body),
        vec![("passed".to_string(), 2), ("broken".to_string(), 1)]
    );

    // Closed: uploads and new sessions answer 409 launch_closed.
    app.post(&format!("/api/launch/{launch}/close"), ADMIN, &json!({}))
        .await
        .expect(204);
    let l = app
        .get(&format!("/api/launch/{launch}"), ADMIN)
        .await
        .expect(200);
    assert_eq!(l.body["closed"], true);
    let more = json!({"testSessionId": session, "results": [result("u-d", "hd", "failed", 3_000)]});
    let refused = app
        .post("/api/upload/test-result", ADMIN, &more)
        .await
        .expect(409);
    assert_eq!(refused.code(), Some("launch_closed"), "{}", refused.body);
    assert!(
        refused.message().contains("launch is closed")
            && refused.message().contains(&format!("launch {launch})")),
        "{}",
        refused.body
    );
    let refused = app
        .post("/api/upload/session", ADMIN, &json!({"launchId": launch}))
        .await
        .expect(409);
    assert_eq!(refused.code(), Some("launch_closed"));
    let refused = app
        .post(
            "/api/upload/start",
            ADMIN,
            &json!({"projectId": 1, "job": {"uid": "other"}, "jobRun": {"uid": "r"}, "launch": {"id": launch}}),
        )
        .await
        .expect(409);
    assert_eq!(refused.code(), Some("launch_closed"));
    assert_eq!(result_count(&app, launch).await, 4, "nothing was stored");

    // Reopened: the same upload is stored.
    app.post(&format!("/api/launch/{launch}/reopen"), ADMIN, &json!({}))
        .await
        .expect(204);
    let stored = app
        .post("/api/upload/test-result", ADMIN, &more)
        .await
        .expect(200);
    assert_eq!(stored.body["resultIds"].as_array().unwrap().len(), 1);
    assert_eq!(result_count(&app, launch).await, 5);
    let stat = app
        .get(&format!("/api/launch/{launch}/statistic"), ADMIN)
        .await
        .expect(200);
    assert_eq!(
        statistic(&stat.body),
        vec![
            ("passed".to_string(), 2),
            ("failed".to_string(), 1),
            ("broken".to_string(), 1)
        ]
    );
}
