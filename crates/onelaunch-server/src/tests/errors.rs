//! Error answers carry a machine-readable `code` next to a message that names
//! what was wrong: 400 `bad_request`, 401 `unauthorized`, 403 `forbidden`,
//! 404 `not_found`, 413 `payload_too_large`.

use axum::http::Method;
use serde_json::json;

use super::{TestApp, ADMIN};

#[tokio::test]
async fn malformed_bodies_answer_400_naming_the_field() {
    let app = TestApp::new().await;
    // A wrong type deep inside the body: the path to it is named.
    let r = app
        .post(
            "/api/upload/test-result",
            ADMIN,
            &json!({"testSessionId": 1, "results": [{"uuid": "a"}, {"uuid": 5}]}),
        )
        .await
        .expect(400);
    assert_eq!(r.code(), Some("bad_request"));
    assert!(r.message().contains("results[1].uuid"), "{}", r.body);
    assert_eq!(r.body["status"], 400);

    // A missing field is named.
    let r = app
        .post("/api/upload/test-result", ADMIN, &json!({"results": []}))
        .await
        .expect(400);
    assert_eq!(r.code(), Some("bad_request"));
    assert!(r.message().contains("testSessionId"), "{}", r.body);

    // Bad syntax and an empty body are 400 too, whatever the content type.
    let r = app
        .send(
            Method::POST,
            "/api/upload/start",
            Some(ADMIN),
            Some("text/plain"),
            b"{\"projectId\": 1,".to_vec(),
        )
        .await
        .expect(400);
    assert_eq!(r.code(), Some("bad_request"));
    assert!(r.message().starts_with("invalid JSON body"), "{}", r.body);
    let r = app
        .send(Method::POST, "/api/upload/start", Some(ADMIN), None, vec![])
        .await
        .expect(400);
    assert_eq!(r.code(), Some("bad_request"));
    assert!(r.message().contains("empty"), "{}", r.body);

    // A field out of range is named.
    let started = app
        .post(
            "/api/upload/start",
            ADMIN,
            &json!({"projectId": 1, "job": {"uid": "j"}, "jobRun": {"uid": "r"}}),
        )
        .await
        .expect(200);
    let r = app
        .post(
            &format!("/api/launch/{}/expected-job-runs", started.id("launchId")),
            ADMIN,
            &json!({"expectedJobRuns": -1}),
        )
        .await
        .expect(400);
    assert!(r.message().contains("expectedJobRuns"), "{}", r.body);
}

#[tokio::test]
async fn unknown_tokens_answer_401_and_project_tokens_403_on_admin_routes() {
    let app = TestApp::new().await;
    for token in [None, Some("not-a-token")] {
        let r = app
            .send(Method::GET, "/api/launch", token, None, vec![])
            .await
            .expect(401);
        assert_eq!(r.code(), Some("unauthorized"));
        assert!(r.message().contains("api-token"), "{}", r.body);
    }
    // The same under the /api/rs mount.
    let r = app
        .send(Method::GET, "/api/rs/launch", None, None, vec![])
        .await
        .expect(401);
    assert_eq!(r.code(), Some("unauthorized"));

    let token = app.project_token(1).await;
    app.get("/api/launch", &token).await.expect(200);
    let r = app
        .post("/api/project", &token, &json!({"name": "mine"}))
        .await
        .expect(403);
    assert_eq!(r.code(), Some("forbidden"));
}

#[tokio::test]
async fn unknown_ids_answer_404() {
    let app = TestApp::new().await;
    for uri in [
        "/api/launch/999999",
        "/api/rs/launch/999999",
        "/api/jobrun/999999",
        "/api/testresult/999999",
        "/api/testplan/999999",
    ] {
        let r = app.get(uri, ADMIN).await.expect(404);
        assert_eq!(r.code(), Some("not_found"), "{uri}");
        assert!(
            r.message().contains("999999 not found"),
            "{uri}: {}",
            r.body
        );
    }
    let r = app
        .post(
            "/api/upload/test-result",
            ADMIN,
            &json!({"testSessionId": 999999, "results": []}),
        )
        .await
        .expect(404);
    assert_eq!(r.message(), "test session 999999 not found");
}

#[tokio::test]
async fn oversized_json_bodies_answer_413() {
    let app = TestApp::new().await;
    let limit = crate::ingest::limits::MAX_JSON_BODY;
    // A syntactically plausible body one byte over the limit.
    let mut body = b"{\"testSessionId\": 1, \"results\": [], \"pad\": \"".to_vec();
    body.resize(limit - 1, b'x');
    body.extend_from_slice(b"\"}");
    assert_eq!(body.len(), limit + 1);
    let r = app
        .send(
            Method::POST,
            "/api/upload/test-result",
            Some(ADMIN),
            Some("application/json"),
            body,
        )
        .await
        .expect(413);
    assert_eq!(r.code(), Some("payload_too_large"));
    assert!(r.message().contains(&limit.to_string()), "{}", r.body);
}

/// A result whose JSON, its texts cut to their bounds, is still over the
/// stored limit refuses its batch with 413 naming it by index and uuid, and
/// nothing of the batch is stored (the check runs as the JSON is built,
/// before the batch's transaction).
#[tokio::test]
async fn a_result_too_large_to_store_refuses_its_batch_with_413() {
    let app = TestApp::new().await;
    let limit = crate::db::MAX_STORED_JSON;
    let (launch, session) = app.launch_session(ADMIN, 1, "big").await;
    let labels: Vec<serde_json::Value> = (0..limit / 20)
        .map(|i| json!({"name": format!("l{i}"), "value": "0123456789"}))
        .collect();
    let batch = json!({"testSessionId": session, "results": [
        {"uuid": "small", "name": "small", "status": "passed"},
        {"uuid": "big", "name": "big", "status": "passed", "labels": labels},
    ]});
    let r = app
        .post("/api/upload/test-result", ADMIN, &batch)
        .await
        .expect(413);
    assert_eq!(r.code(), Some("payload_too_large"));
    assert!(
        r.message().contains("results[1]")
            && r.message().contains("\"big\"")
            && r.message().contains(&limit.to_string()),
        "{}",
        r.body
    );
    let stored = app
        .get(&format!("/api/launch/{launch}/statistic"), ADMIN)
        .await
        .expect(200);
    assert_eq!(stored.body, json!([]), "nothing of the batch is stored");
}

#[tokio::test]
async fn the_frameworks_own_rejections_answer_the_json_error_body_too() {
    let app = TestApp::new().await;
    for prefix in ["/api", "/api/rs"] {
        // A path value that is not a number.
        let r = app
            .get(&format!("{prefix}/launch/abc"), ADMIN)
            .await
            .expect(400);
        assert_eq!(r.code(), Some("bad_request"), "{}", r.body);
        assert_eq!(r.body["status"], 400);
        assert!(!r.message().is_empty(), "{}", r.body);
        // A query value that does not parse.
        let r = app
            .get(&format!("{prefix}/launch?projectId=x"), ADMIN)
            .await
            .expect(400);
        assert_eq!(r.code(), Some("bad_request"), "{}", r.body);
        // A method the route does not have.
        let r = app
            .send(
                Method::PATCH,
                &format!("{prefix}/launch"),
                Some(ADMIN),
                None,
                vec![],
            )
            .await
            .expect(405);
        assert_eq!(r.code(), Some("bad_request"), "{}", r.body);
        assert_eq!(r.body["status"], 405);
    }
}
