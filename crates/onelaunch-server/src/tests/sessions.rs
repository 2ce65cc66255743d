//! Upload sessions end on their own (issue 13): a tracked session is in
//! flight until its client closes it (`POST /upload/session/{id}/close`), and
//! until then the launch is not done, whatever its job runs say. Closing is
//! scoped like every other object, idempotent, and accepted on a closed
//! launch; a job run only uploads created finishes with its last session.

use std::time::Duration;

use serde_json::{json, Value};

use super::{TestApp, ADMIN};

fn start_body(run_uid: &str, implicit: bool) -> Value {
    json!({
        "projectId": 1,
        "ci": {"type": "github"},
        "job": {"uid": "acme/shop/ci", "name": "CI"},
        "jobRun": {"uid": run_uid, "name": format!("run {run_uid}")},
        "launch": {"name": "shards"},
        "implicit": implicit,
    })
}

fn result(uuid: &str) -> Value {
    json!({"uuid": uuid, "name": uuid, "status": "passed"})
}

async fn session(app: &TestApp, job_run: i64, track: bool, run_name: &str) -> i64 {
    app.post(
        "/api/upload/session",
        ADMIN,
        &json!({"jobRunId": job_run, "track": track,
                "ci": {"type": "github", "runName": run_name}}),
    )
    .await
    .expect(200)
    .id("id")
}

async fn participants(app: &TestApp, launch: i64) -> Value {
    app.get(&format!("/api/launch/{launch}"), ADMIN)
        .await
        .expect(200)
        .body["participants"]
        .clone()
}

#[tokio::test]
async fn an_open_session_holds_the_launch_until_its_client_closes_it() {
    let app = TestApp::new().await;
    let started = app
        .post("/api/upload/start", ADMIN, &start_body("7", false))
        .await
        .expect(200);
    let (launch, run) = (started.id("launchId"), started.id("jobRunId"));

    // Two shards of one job run: the fast one and the slow one; and a
    // session of a client that never closes (the Allure 3 plugin).
    let fast = session(&app, run, true, "shard 1").await;
    let slow = session(&app, run, true, "shard 2").await;
    let _untracked = session(&app, run, false, "plugin").await;
    let p = participants(&app, launch).await;
    let open: Vec<i64> = p["openSessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(open, [fast, slow], "{p}");
    assert_eq!(p["openSessions"][1]["ci"]["runName"], "shard 2", "{p}");

    // The fast shard ends; the job run is stopped: the slow one is in flight.
    app.post(
        "/api/upload/test-result",
        ADMIN,
        &json!({"testSessionId": fast, "results": [result("a")]}),
    )
    .await
    .expect(200);
    let closed = app
        .post(
            &format!("/api/upload/session/{fast}/close"),
            ADMIN,
            &json!({}),
        )
        .await
        .expect(204);
    assert_eq!(closed.body, Value::Null);
    app.post(
        "/api/upload/stop",
        ADMIN,
        &json!({"projectId": 1, "jobRunId": run}),
    )
    .await
    .expect(200);
    let progress = app
        .get(&format!("/api/launch/{launch}/progress"), ADMIN)
        .await
        .expect(200);
    assert_eq!(progress.body["ready"], true);
    assert_eq!(progress.body["done"], false, "{}", progress.body);
    assert_eq!(
        progress.body["participants"]["openSessions"][0]["id"], slow,
        "{}",
        progress.body
    );

    // Another project's token cannot see, let alone close, the session.
    let other = app.create_project("other").await;
    let token = app.project_token(other).await;
    let refused = app
        .post(
            &format!("/api/upload/session/{slow}/close"),
            &token,
            &json!({}),
        )
        .await
        .expect(404);
    assert_eq!(refused.code(), Some("not_found"));
    assert_eq!(
        participants(&app, launch).await["openSessions"][0]["id"],
        slow
    );

    // A plain close while the slow shard is in flight: its next request is
    // refused; closing its session is accepted (twice: idempotent).
    app.post(&format!("/api/launch/{launch}/close"), ADMIN, &json!({}))
        .await
        .expect(204);
    let late = app
        .post(
            "/api/upload/test-result",
            ADMIN,
            &json!({"testSessionId": slow, "results": [result("b")]}),
        )
        .await
        .expect(409);
    assert_eq!(late.code(), Some("launch_closed"));
    for _ in 0..2 {
        app.post(
            &format!("/api/upload/session/{slow}/close"),
            ADMIN,
            &json!({}),
        )
        .await
        .expect(204);
    }
    let p = participants(&app, launch).await;
    assert_eq!(p.get("openSessions"), None, "{p}");
    assert_eq!(p["unfinished"], json!([]), "{p}");

    // An unknown session is 404.
    app.post("/api/upload/session/999999/close", ADMIN, &json!({}))
        .await
        .expect(404);
}

#[tokio::test]
async fn a_job_run_uploads_created_is_done_when_its_sessions_are_closed() {
    let app = TestApp::new().await;
    let started = app
        .post("/api/upload/start", ADMIN, &start_body("8", true))
        .await
        .expect(200);
    let (launch, run) = (started.id("launchId"), started.id("jobRunId"));
    // The second shard joins the same job run, also by an upload.
    app.post("/api/upload/start", ADMIN, &start_body("8", true))
        .await
        .expect(200);
    let a = session(&app, run, true, "a").await;
    let b = session(&app, run, true, "b").await;
    app.post(
        "/api/upload/test-result",
        ADMIN,
        &json!({"testSessionId": a, "results": [json!({"uuid": "x", "name": "x", "status": "failed"})]}),
    )
    .await
    .expect(200);
    app.post(&format!("/api/upload/session/{a}/close"), ADMIN, &json!({}))
        .await
        .expect(204);
    let p = participants(&app, launch).await;
    assert_eq!(p["unfinished"][0]["id"], run, "b is in flight: {p}");
    let jr = app
        .get(&format!("/api/jobrun/{run}"), ADMIN)
        .await
        .expect(200);
    assert_eq!(jr.body["stage"], "in_progress");

    app.post(&format!("/api/upload/session/{b}/close"), ADMIN, &json!({}))
        .await
        .expect(204);
    let jr = app
        .get(&format!("/api/jobrun/{run}"), ADMIN)
        .await
        .expect(200);
    assert_eq!(jr.body["stage"], "finished", "{}", jr.body);
    assert_eq!(jr.body["status"], "failed", "derived from its results");
    let p = participants(&app, launch).await;
    assert_eq!(p["unfinished"], json!([]), "{p}");

    // `job-run start` joining it makes it one that must be stopped.
    app.post("/api/upload/start", ADMIN, &start_body("8", false))
        .await
        .expect(200);
    let p = participants(&app, launch).await;
    assert_eq!(p["unfinished"][0]["id"], run, "{p}");
}

#[tokio::test]
async fn a_silent_session_counts_as_abandoned() {
    let app = TestApp::with_config(|c| c.upload_session_timeout = Some(Duration::ZERO)).await;
    let started = app
        .post("/api/upload/start", ADMIN, &start_body("9", true))
        .await
        .expect(200);
    let (launch, run) = (started.id("launchId"), started.id("jobRunId"));
    let s = session(&app, run, true, "gone").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let progress = app
        .get(&format!("/api/launch/{launch}/progress"), ADMIN)
        .await
        .expect(200);
    let p = &progress.body["participants"];
    assert_eq!(progress.body["done"], true, "{}", progress.body);
    assert_eq!(p.get("openSessions"), None, "{p}");
    assert_eq!(p["abandonedSessions"][0]["id"], s, "{p}");
}
