//! Errors and attachments outside tests (Allure 3 `*-globals.json`) sent as
//! raw files: stored once per session and file, listed on the launch and its
//! job run, their bytes served, a damaged file named while good ones are kept,
//! and nothing of it visible to another project's token.

use serde_json::json;

use super::{TestApp, ADMIN};

const GLOBALS: &str = r#"{"errors":[{"message":"\"before each\" hook: connect failed: database is not reachable","trace":"Error: database is not reachable\n    at Context.connect","timestamp":1700000000000}],"attachments":[]}"#;
const GLOBAL_ATTACHMENT: &str = r#"{"errors":[],"attachments":[{"name":"server.log","source":"a1-attachment.txt","type":"text/plain"}]}"#;

async fn session_in_job_run(app: &TestApp, uid: &str) -> (i64, i64, i64) {
    let started = app
        .post(
            "/api/upload/start",
            ADMIN,
            &json!({"projectId": 1, "job": {"uid": uid}, "jobRun": {"uid": format!("{uid}-1")}}),
        )
        .await
        .expect(200);
    let (launch, run) = (started.id("launchId"), started.id("jobRunId"));
    let session = app
        .post("/api/upload/session", ADMIN, &json!({"jobRunId": run}))
        .await
        .expect(200)
        .id("id");
    (launch, run, session)
}

#[tokio::test]
async fn globals_are_stored_once_listed_and_scoped() {
    let app = TestApp::new().await;
    let (launch, run, session) = session_in_job_run(&app, "globals").await;
    let file = format!("/api/upload/file?id={session}");
    // The globals file may come before the attachment it names.
    for _ in 0..2 {
        app.upload(&file, ADMIN, "e1-globals.json", GLOBALS)
            .await
            .expect(202);
        app.upload(&file, ADMIN, "a1-globals.json", GLOBAL_ATTACHMENT)
            .await
            .expect(202);
    }
    app.upload(
        &file,
        ADMIN,
        "a1-attachment.txt",
        "server started on port 8080\n",
    )
    .await
    .expect(202);

    for uri in [
        format!("/api/launch/{launch}/globals"),
        format!("/api/jobrun/{run}/globals"),
    ] {
        let g = app.get(&uri, ADMIN).await.expect(200);
        assert_eq!(g.body["launchId"], launch, "{}", g.body);
        assert_eq!(
            g.body["errorCount"], 1,
            "sent twice, stored once: {}",
            g.body
        );
        assert_eq!(g.body["attachmentCount"], 1, "{}", g.body);
        let e = &g.body["errors"][0];
        assert_eq!(
            e["message"],
            "\"before each\" hook: connect failed: database is not reachable"
        );
        assert_eq!(e["jobRunId"], run);
        assert_eq!(e["sessionId"], session);
        assert_eq!(e["fileName"], "e1-globals.json");
        assert_eq!(e["timestamp"], 1_700_000_000_000i64);
        let a = &g.body["attachments"][0];
        assert_eq!(a["name"], "server.log");
        assert_eq!(a["contentLength"], 28);
        let content = app
            .get(a["contentUrl"].as_str().unwrap(), ADMIN)
            .await
            .expect(200);
        assert_eq!(content.body, "server started on port 8080\n");
    }
    assert_eq!(
        app.get(&format!("/api/jobrun/{run}/globals"), ADMIN)
            .await
            .body["jobRunId"],
        run
    );

    // Like a result's uuid, the file's name identifies it in the launch: a
    // later upload of the same directory (another session) adds nothing.
    let again = app
        .post("/api/upload/session", ADMIN, &json!({"jobRunId": run}))
        .await
        .expect(200)
        .id("id");
    app.upload(
        &format!("/api/upload/file?id={again}"),
        ADMIN,
        "e1-globals.json",
        GLOBALS,
    )
    .await
    .expect(202);

    // A damaged globals file is named; the good file next to it is kept.
    let (ct, body) = two_parts(
        ("bad-globals.json", r#"{"errors":[{"message":7}]}"#),
        (
            "good-globals.json",
            r#"{"errors":[{"message":"after all failed"}]}"#,
        ),
    );
    let bad = app
        .send(
            axum::http::Method::POST,
            &file,
            Some(ADMIN),
            Some(&ct),
            body,
        )
        .await
        .expect(400);
    assert!(
        bad.message()
            .contains("bad-globals.json: invalid type for field `errors[0].message`"),
        "{}",
        bad.message()
    );
    let g = app
        .get(&format!("/api/launch/{launch}/globals"), ADMIN)
        .await
        .expect(200);
    assert_eq!(g.body["errorCount"], 2, "{}", g.body);

    // Another project's token sees none of it.
    let other = app.create_project("Other").await;
    let token = app.project_token(other).await;
    let attachment = g.body["attachments"][0]["id"].as_i64().unwrap();
    for uri in [
        format!("/api/launch/{launch}/globals"),
        format!("/api/jobrun/{run}/globals"),
        format!("/api/globals/attachment/{attachment}/content"),
    ] {
        let r = app.get(&uri, &token).await.expect(404);
        assert_eq!(r.code(), Some("not_found"), "{uri}");
        assert!(!r.body.to_string().contains("hook"), "{}", r.body);
    }

    // New problems need an open launch, like results.
    app.post(&format!("/api/launch/{launch}/close"), ADMIN, &json!({}))
        .await
        .expect(204);
    let closed = app.upload(&file, ADMIN, "late-globals.json", GLOBALS).await;
    assert_eq!(closed.code(), Some("launch_closed"), "{}", closed.body);
}

fn two_parts(a: (&str, &str), b: (&str, &str)) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "onelaunch-test-boundary";
    let part = |(name, content): (&str, &str)| {
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/json\r\n\r\n{content}\r\n"
        )
    };
    (
        format!("multipart/form-data; boundary={BOUNDARY}"),
        format!("{}{}--{BOUNDARY}--\r\n", part(a), part(b)).into_bytes(),
    )
}

/// The Allure 3 TestOps plugin sends a launch's global errors to
/// `/api/launch/error/bulk` and its global attachments to
/// `/api/launch/attachment`: both are kept with the launch's globals.
#[tokio::test]
async fn the_allure_plugins_launch_errors_and_attachments_are_kept() {
    let app = TestApp::new().await;
    let (launch, _, _) = session_in_job_run(&app, "plugin").await;
    let bad = app
        .post(
            "/api/launch/error/bulk",
            ADMIN,
            &json!({"launchId": launch, "items": ["not an object"]}),
        )
        .await
        .expect(400);
    assert!(bad.message().contains("items[0]"), "{}", bad.body);
    let errors = json!({"launchId": launch, "items": [
        {"message": "\"before all\" hook failed: no database", "trace": "Error: no database"},
        {"message": "teardown failed"}]});
    for _ in 0..2 {
        app.post("/api/launch/error/bulk", ADMIN, &errors)
            .await
            .expect(200);
    }
    for _ in 0..2 {
        app.upload(
            &format!("/api/launch/attachment?launchId={launch}"),
            ADMIN,
            "server.log",
            "GET /health 500",
        )
        .await
        .expect(202);
    }
    let g = app
        .get(&format!("/api/launch/{launch}/globals"), ADMIN)
        .await
        .expect(200);
    assert_eq!(
        g.body["errorCount"], 2,
        "re-sent errors are kept once: {}",
        g.body
    );
    assert_eq!(
        g.body["errors"][0]["message"],
        "\"before all\" hook failed: no database"
    );
    assert_eq!(g.body["errors"][0]["trace"], "Error: no database");
    assert_eq!(g.body["attachmentCount"], 1, "{}", g.body);
    assert_eq!(g.body["attachments"][0]["name"], "server.log");
    let url = g.body["attachments"][0]["contentUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let content = app.get(&url, ADMIN).await.expect(200);
    assert_eq!(content.body, json!("GET /health 500"));
}
