//! `POST /api/upload/attachment/bulk`: the attachments of several results in
//! one request. What it stores, what it refuses part by part (a result of
//! another project exactly like one that does not exist), and the requests
//! it refuses whole.

use axum::http::Method;
use serde_json::{json, Value};

use super::{Reply, TestApp, ADMIN};

const BOUNDARY: &str = "bulk-test-boundary";

/// A multipart part: `("result", None, "12")` or `("file", Some(name), bytes)`.
type Part<'a> = (&'a str, Option<&'a str>, &'a str);

fn body(parts: &[Part<'_>]) -> Vec<u8> {
    let mut b = String::new();
    for (name, file_name, content) in parts {
        b.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\""
        ));
        if let Some(f) = file_name {
            b.push_str(&format!("; filename=\"{f}\"\r\nContent-Type: text/plain"));
        }
        b.push_str(&format!("\r\n\r\n{content}\r\n"));
    }
    b.push_str(&format!("--{BOUNDARY}--\r\n"));
    b.into_bytes()
}

async fn bulk(app: &TestApp, token: &str, parts: &[Part<'_>]) -> Reply {
    app.send(
        Method::POST,
        "/api/upload/attachment/bulk",
        Some(token),
        Some(&format!("multipart/form-data; boundary={BOUNDARY}")),
        body(parts),
    )
    .await
}

/// A launch of `project` with one result per uuid; answers the result ids.
async fn results(app: &TestApp, token: &str, project: i64, uuids: &[&str]) -> Vec<i64> {
    let (_, session) = app.launch_session(token, project, "bulk").await;
    let results: Vec<Value> = uuids
        .iter()
        .map(|u| json!({"uuid": u, "name": u, "status": "passed"}))
        .collect();
    app.upload_results(token, session, &results).await
}

/// `(file name, size)` of a result's attachments, as the admin sees them.
async fn attachments(app: &TestApp, result: i64) -> Vec<(String, i64)> {
    let r = app
        .get(&format!("/api/testresult/{result}"), ADMIN)
        .await
        .expect(200);
    let mut out: Vec<(String, i64)> = r.body["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["fileName"].as_str().unwrap().to_string(),
                a["size"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn several_results_in_one_request_and_refusals_part_by_part() {
    let app = TestApp::new().await;
    let ours = results(&app, ADMIN, 1, &["a", "b"]).await;
    let other_project = app.create_project("other").await;
    let token = app.project_token(other_project).await;
    let theirs = results(&app, &token, other_project, &["c"]).await;
    let (a, b, c) = (
        ours[0].to_string(),
        ours[1].to_string(),
        theirs[0].to_string(),
    );
    let too_long = format!("{}.txt", "x".repeat(1100));

    // The admin: two results, the same name twice (the last bytes count).
    let r = bulk(
        &app,
        ADMIN,
        &[
            ("result", None, &a),
            ("file", Some("log.txt"), "first"),
            ("file", Some("shot.png"), "png"),
            ("result", None, &b),
            ("file", Some("log.txt"), "other"),
            ("result", None, &a),
            ("file", Some("log.txt"), "second!"),
        ],
    )
    .await
    .expect(200);
    assert_eq!(r.body["filesCount"], 4, "{:?}", r.body);
    assert_eq!(r.body["refused"], json!([]));
    assert_eq!(
        attachments(&app, ours[0]).await,
        [("log.txt".to_string(), 7), ("shot.png".to_string(), 3)]
    );
    assert_eq!(
        attachments(&app, ours[1]).await,
        [("log.txt".to_string(), 5)]
    );

    // Another project's token: project 1's result is refused exactly like
    // an id that does not exist; its own result and a good name still go in.
    let r = bulk(
        &app,
        &token,
        &[
            ("result", None, &a),
            ("file", Some("stolen.txt"), "x"),
            ("result", None, &c),
            ("file", Some("mine.txt"), "mine"),
            ("file", Some(&too_long), "no"),
            ("result", None, "999999"),
            ("file", Some("ghost.txt"), "boo"),
        ],
    )
    .await
    .expect(200);
    assert_eq!(r.body["filesCount"], 1, "{:?}", r.body);
    let refused = r.body["refused"].as_array().unwrap();
    let shape = |v: &Value| {
        (
            v["fileName"].as_str().unwrap().to_string(),
            v["code"].as_str().unwrap().to_string(),
            v["message"]
                .as_str()
                .unwrap()
                .replace(&a, "#")
                .replace("999999", "#"),
        )
    };
    let mut got: Vec<_> = refused.iter().map(shape).collect();
    got.sort();
    assert_eq!(got.len(), 3, "{refused:?}");
    assert_eq!(
        (&got[0].0[..], &got[0].1[..], &got[0].2[..]),
        ("ghost.txt", "not_found", "test result # not found")
    );
    assert_eq!(
        (&got[1].0[..], &got[1].1[..], &got[1].2[..]),
        ("stolen.txt", "not_found", "test result # not found")
    );
    assert_eq!((&got[2].0, &got[2].1[..]), (&too_long, "bad_request"));
    assert!(got[2].2.contains("is longer than"), "{:?}", got[2]);
    assert_eq!(
        attachments(&app, theirs[0]).await,
        [("mine.txt".to_string(), 4)]
    );
    assert_eq!(
        attachments(&app, ours[0]).await,
        [("log.txt".to_string(), 7), ("shot.png".to_string(), 3)],
        "nothing reached project 1's result"
    );
}

#[tokio::test]
async fn requests_that_do_not_follow_the_shape_are_refused_whole() {
    let app = TestApp::new().await;
    let ids = results(&app, ADMIN, 1, &["a"]).await;
    let a = ids[0].to_string();
    for (parts, says) in [
        (
            vec![("file", Some("x.txt"), "x"), ("result", None, a.as_str())],
            "must follow a `result` part",
        ),
        (vec![("result", None, "twelve")], "result"),
        (
            vec![("result", None, a.as_str()), ("notes", None, "hi")],
            "expected `result`",
        ),
    ] {
        let r = bulk(&app, ADMIN, &parts).await.expect(400);
        assert!(r.message().contains(says), "{says}: {:?}", r.body);
    }
    // More file parts than a request may hold: refused whole, nothing kept.
    let mut many: Vec<Part<'_>> = vec![("result", None, a.as_str())];
    many.extend(std::iter::repeat_n(("file", Some("f.txt"), "x"), 1001));
    let r = bulk(&app, ADMIN, &many).await.expect(400);
    assert!(r.message().contains("at most 1000 files"), "{:?}", r.body);
    assert_eq!(attachments(&app, ids[0]).await, []);
}
