//! Hostile input and security: the hostile-input corpus through the CLI next
//! to real results and straight over HTTP (every bad item refused with a
//! message naming it, every good result stored, never a 5xx or a panic), body
//! and field limits, project isolation on every route, and secrets kept out
//! of the database, the answers and the server log (request log included).

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use crate::closing::strip_ansi;
use crate::support::*;

// ---------------------------------------------------------------- helpers

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::write(path, bytes).unwrap();
}

/// A result whose steps nest `depth` levels deep.
fn deep_result(uuid: &str, depth: usize) -> String {
    let mut s = format!(r#"{{"uuid":"{uuid}","name":"deep","status":"passed","steps":["#);
    for _ in 0..depth {
        s.push_str(r#"{"name":"s","steps":["#);
    }
    for _ in 0..depth {
        s.push_str("]}");
    }
    s.push_str("]}");
    s
}

/// The server answered no 5xx and did not panic: 5xx answers are logged as
/// "request failed" at ERROR level.
#[track_caller]
fn assert_clean_log(server: &TestServer) {
    let log = strip_ansi(&server.log());
    for bad in ["panicked", "request failed", " ERROR "] {
        assert!(!log.contains(bad), "server log contains {bad:?}:\n{log}");
    }
}

fn send(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    // A fresh connection per request: the server refuses some bodies without
    // reading them and then closes the connection, which a pooled client may
    // not have noticed before it sends the next request on it.
    let http = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = http
        .request(method, format!("{}{path}", api.url))
        .header("Authorization", format!("api-token {}", api.token))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn post_bytes(api: &Api, path: &str, body: Vec<u8>) -> (u16, Value) {
    send(api, reqwest::Method::POST, path, "application/json", body)
}

/// A hand-made multipart body (so file names can hold anything).
fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "onelaunchBoundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Asserts an error answer: the status, our JSON error body, and that its
/// message contains `needle`.
#[track_caller]
fn assert_refused(answer: (u16, Value), status: u16, needle: &str) {
    let (s, v) = answer;
    assert_eq!(s, status, "{v}");
    assert_eq!(v["status"], status, "{v}");
    let m = v["message"].as_str().unwrap_or_default();
    assert!(m.contains(needle), "message {m:?} lacks {needle:?}");
}

fn manual_session(api: &Api, name: &str) -> (i64, i64) {
    let launch = api.post("/api/launch", &json!({"name": name, "projectId": 1}))["id"]
        .as_i64()
        .unwrap();
    let session = api.post(
        "/api/upload/session?manual=true",
        &json!({"launchId": launch}),
    )["id"]
        .as_i64()
        .unwrap();
    (launch, session)
}

// ---------------------------------------------------------------- the corpus through the CLI

#[test]
fn hostile_files_are_refused_by_name_and_every_good_result_arrives() {
    let server = TestServer::start();
    let api = server.api();
    let root = server.work_dir().join("job");
    let dir = root.join("allure-results");
    copy_dir(&fixture("tests/fixtures/allure-pytest"), &dir);
    generate_results(&dir, "good", 40);
    let good = count_files(&dir, "-result.json");

    // Outside the results directory.
    write(
        &root.join("outside-result.json"),
        r#"{"uuid":"outside-1","name":"outside","status":"passed"}"#,
    );
    write(&root.join("secret.txt"), "top secret\n");

    let valid = r#"{"uuid":"trunc-1","name":"truncated","status":"passed","start":1,"stop":2}"#;
    write(
        &dir.join("truncated-result.json"),
        &valid[..valid.len() / 2],
    );
    write(
        &dir.join("malformed-result.json"),
        "{\"uuid\": \"m-1\", \"name\": ",
    );
    write(
        &dir.join("wrongtype-result.json"),
        r#"{"uuid":"w-1","name":"n","start":"yesterday"}"#,
    );
    write(
        &dir.join("latin1-result.json"),
        b"{\"uuid\":\"l-1\",\"name\":\"caf\xe9\"}",
    );
    write(&dir.join("empty-result.json"), "");
    {
        // A real 100 MB result file: one enormous message.
        let mut f = std::fs::File::create(dir.join("huge-result.json")).unwrap();
        f.write_all(br#"{"uuid":"huge-1","name":"huge","status":"passed","message":""#)
            .unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(br#""}"#).unwrap();
    }
    write(
        &dir.join("deep-result.json"),
        deep_result("deep-1", 100_000),
    );
    let absolute = root.join("secret.txt");
    write(
        &dir.join("escape-result.json"),
        json!({"uuid": "esc-1", "name": "escape", "status": "passed", "attachments": [
            {"name": "up", "source": "../secret.txt", "type": "text/plain"},
            {"name": "abs", "source": absolute.to_str().unwrap(), "type": "text/plain"}]})
        .to_string(),
    );
    std::os::unix::fs::symlink(
        root.join("outside-result.json"),
        dir.join("link-result.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&absolute, dir.join("linked-attachment.txt")).unwrap();
    write(
        &dir.join("symatt-result.json"),
        json!({"uuid": "symatt-1", "name": "symlinked attachment", "status": "passed",
               "attachments": [{"name": "l", "source": "linked-attachment.txt"}]})
        .to_string(),
    );
    write(
        &dir.join("new\nline-result.json"),
        r#"{"uuid":"newline-1","name":"newline","status":"passed"}"#,
    );
    write(
        &dir.join("a\nb.txt"),
        "attachment with a newline in its name",
    );
    write(
        &dir.join("nlatt-result.json"),
        json!({"uuid": "nlatt-1", "name": "newline attachment", "status": "failed",
               "attachments": [{"name": "nl", "source": "a\nb.txt"}]})
        .to_string(),
    );

    let r = server
        .cli()
        .run(&["upload", "--launch-name", "Hostile", dir.to_str().unwrap()])
        .code(3);
    let refused: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("refused: "))
        .collect();
    let named = |file: &str, why: &str| {
        assert!(
            refused.iter().any(|l| l.contains(file) && l.contains(why)),
            "no refusal naming {file:?} with {why:?}:\n{}",
            r.stderr
        );
    };
    named("truncated-result.json", "end of input");
    named("malformed-result.json", "end of input");
    named("wrongtype-result.json", "start");
    named("latin1-result.json", "UTF-8");
    named("empty-result.json", "empty");
    named("huge-result.json", "larger than the limit");
    named("deep-result.json", "nesting");
    named("escape-result.json", "\"../secret.txt\"");
    named("escape-result.json", absolute.to_str().unwrap());
    named("link-result.json", "outside the results directory");
    named("symatt-result.json", "outside the results directory");
    named("new\\nline-result.json", "control character");
    named("nlatt-result.json", "\"a\\nb.txt\"");
    assert!(
        !r.stderr.contains("new\nline"),
        "a file name broke a line:\n{}",
        r.stderr
    );
    assert!(!r.all().contains("top secret"));

    // Every good result arrived, with those whose attachments were refused.
    let launch = api.launches(1)[0]["id"].as_i64().unwrap();
    let results = api.results(launch);
    let uuids: Vec<&str> = results
        .iter()
        .map(|r| r["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(results.len(), good + 3, "{uuids:?}");
    for u in ["esc-1", "symatt-1", "nlatt-1", "good-0", "good-39"] {
        assert!(uuids.contains(&u), "{u} missing");
    }
    for u in [
        "outside-1",
        "newline-1",
        "huge-1",
        "deep-1",
        "trunc-1",
        "w-1",
        "m-1",
        "l-1",
    ] {
        assert!(!uuids.contains(&u), "{u} should have been refused");
    }
    // Nothing from outside the directory was stored as an attachment.
    for r in results
        .iter()
        .filter(|r| r["attachmentCount"].as_i64() > Some(0))
    {
        let full = api.get(&format!("/api/testresult/{}", r["id"]));
        for a in full["attachments"].as_array().unwrap() {
            if a["stored"] == true {
                let (_, body) = content(&api, a["id"].as_i64().unwrap());
                assert!(!body.contains("top secret"), "{full}");
            }
        }
    }
    assert_clean_log(&server);
}

fn content(api: &Api, attachment: i64) -> (u16, String) {
    let r = api
        .http
        .get(format!("{}/api/attachment/{attachment}/content", api.url))
        .header("Authorization", format!("api-token {}", api.token))
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap_or_default())
}

// ---------------------------------------------------------------- the corpus over HTTP

#[test]
fn hostile_requests_get_a_4xx_naming_the_problem_never_a_5xx() {
    let server = TestServer::start();
    let api = server.api();
    let (launch, session) = manual_session(&api, "hostile http");
    let results = "/api/upload/test-result";
    let body = |results: Value| json!({"testSessionId": session, "results": results}).to_string();

    // Malformed, truncated, wrong types, invalid UTF-8, empty, deep nesting.
    assert_refused(
        post_bytes(&api, results, b"{".to_vec()),
        400,
        "invalid JSON body",
    );
    let good = body(json!([{"uuid": "g-1", "name": "good", "status": "passed"}]));
    assert_refused(
        post_bytes(&api, results, good.as_bytes()[..good.len() / 2].to_vec()),
        400,
        "invalid JSON body",
    );
    assert_refused(
        post_bytes(&api, results, body(json!([{"uuid": 5}])).into_bytes()),
        400,
        "results[0].uuid",
    );
    assert_refused(
        post_bytes(
            &api,
            results,
            body(json!([{"uuid": "t", "start": "yesterday"}])).into_bytes(),
        ),
        400,
        "results[0].start",
    );
    let mut latin1 = body(json!([{"uuid": "l-1", "name": "cafe"}])).into_bytes();
    let at = latin1.windows(4).position(|w| w == b"cafe").unwrap();
    latin1[at + 3] = 0xe9;
    assert_refused(post_bytes(&api, results, latin1), 400, "invalid JSON body");
    assert_refused(post_bytes(&api, results, Vec::new()), 400, "empty");
    let deep = format!(
        r#"{{"testSessionId":{session},"results":[{}]}}"#,
        deep_result("deep-1", 100_000)
    );
    assert_refused(post_bytes(&api, results, deep.into_bytes()), 400, "nesting");
    // The good one still goes in.
    assert_eq!(post_bytes(&api, results, good.into_bytes()).0, 200);

    // A JSON body above 64 MiB: 413 with the JSON error body.
    let mut big =
        format!(r#"{{"testSessionId":{session},"results":[{{"uuid":"big","name":""#).into_bytes();
    big.resize(big.len() + 65 * 1024 * 1024, b'x');
    big.extend_from_slice(br#""}]}"#);
    assert_refused(post_bytes(&api, results, big), 413, "larger than");

    // One result whose JSON stays above 8 MiB after long texts are cut: 413
    // naming it; the batch is refused, a re-send without it goes in.
    let labels: Vec<Value> = (0..200_000)
        .map(|i| json!({"name": format!("l{i}"), "value": "0123456789abcdef"}))
        .collect();
    assert_refused(
        post_bytes(
            &api,
            results,
            body(json!([{"uuid": "ok-1", "name": "ok"}, {"uuid": "labels-1", "name": "many labels", "labels": labels}]))
                .into_bytes(),
        ),
        413,
        "results[1] (uuid \"labels-1\")",
    );

    // Long texts are cut to their bounds, not refused.
    let long = |n: usize| "é".repeat(n / 2);
    let up = api.post(
        results,
        &json!({"testSessionId": session, "results": [{
            "uuid": "long-1", "name": long(10_000), "fullName": long(100_000),
            "status": "failed", "message": long(1 << 20), "trace": long(1 << 20),
            "description": long(1 << 20),
            "labels": [{"name": long(1000), "value": long(100_000)}],
            "parameters": [{"name": "p", "value": long(100_000)}],
            "links": [{"name": "l", "url": long(100_000)}],
            "steps": [{"body": long(1 << 20), "message": long(1 << 20),
                       "attachment": {"name": "a", "originalFileName": long(10_000)}}],
            "attachments": [{"name": "line\nbreak", "originalFileName": "new\nline.txt"}],
        }]}),
    );
    let id = up["results"][0]["id"].as_i64().unwrap();
    let stored = &api.get(&format!("/api/testresult/{id}"))["result"];
    let len = |v: &Value| v.as_str().unwrap().len();
    assert!(len(&stored["name"]) <= 1000);
    assert!(len(&stored["fullName"]) <= 4096);
    assert!(len(&stored["message"]) <= 256 * 1024);
    assert!(len(&stored["description"]) <= 256 * 1024);
    assert!(len(&stored["labels"][0]["name"]) <= 255);
    assert!(len(&stored["labels"][0]["value"]) <= 4096);
    assert!(len(&stored["parameters"][0]["value"]) <= 4096);
    assert!(len(&stored["links"][0]["url"]) <= 4096);
    assert!(len(&stored["steps"][0]["body"]) <= 64 * 1024);
    assert!(len(&stored["steps"][0]["attachment"]["originalFileName"]) <= 1024);
    // Control characters in declared attachment names become `_`.
    assert_eq!(stored["attachments"][0]["originalFileName"], "new_line.txt");
    assert_eq!(stored["attachments"][0]["name"], "line_break");

    // Multipart file names: a newline or tab is refused with a 400 that shows
    // the name escaped; other parts of /upload/file are still stored.
    let rid = up["results"][0]["id"].as_i64().unwrap();
    let att = format!("/api/upload/test-result/{rid}/attachment");
    for name in ["a\nb.txt", "a\rb.txt"] {
        let (ct, mp) = multipart(&[(name, b"x")]);
        let (s, v) = send(&api, reqwest::Method::POST, &att, &ct, mp);
        assert_eq!(s, 400, "{name:?}: {v}");
    }
    let (ct, mp) = multipart(&[("tab\there.txt", b"x")]);
    assert_refused(
        send(&api, reqwest::Method::POST, &att, &ct, mp),
        400,
        "\"tab\\there.txt\" contains a control character",
    );
    let (ct, mp) = multipart(&[
        (
            "ok-file-result.json",
            br#"{"uuid":"file-1","name":"from a file","status":"passed"}"#,
        ),
        (
            "bad\tname-result.json",
            br#"{"uuid":"file-2","name":"bad name","status":"passed"}"#,
        ),
        (
            "deep-result.json",
            deep_result("file-3", 100_000).as_bytes(),
        ),
        ("empty-result.json", b""),
    ]);
    let (s, v) = send(
        &api,
        reqwest::Method::POST,
        &format!("/api/upload/file?id={session}"),
        &ct,
        mp,
    );
    assert_eq!(s, 400, "{v}");
    let m = v["message"].as_str().unwrap();
    assert!(m.contains("3 of 4 files were refused"), "{m}");
    assert!(m.contains("\"bad\\tname-result.json\""), "{m}");
    assert!(
        m.contains("deep-result.json: ") && m.contains("nesting"),
        "{m}"
    );
    assert!(m.contains("empty-result.json: "), "{m}");
    let uuids: Vec<String> = api
        .results(launch)
        .iter()
        .map(|r| r["uuid"].as_str().unwrap().to_string())
        .collect();
    assert!(uuids.contains(&"file-1".to_string()), "{uuids:?}");
    assert!(!uuids.iter().any(|u| u == "file-2" || u == "file-3"));

    // Multipart bodies may be larger than JSON ones (70 MiB attachment) ...
    let (ct, mp) = multipart(&[("video.bin", &vec![7u8; 70 * 1024 * 1024])]);
    let (s, v) = send(&api, reqwest::Method::POST, &att, &ct, mp);
    assert_eq!(s, 202, "{v}");
    let listed = api.get(&format!("/api/testresult/{rid}"));
    assert!(listed["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["fileName"] == "video.bin" && a["size"] == 70 * 1024 * 1024));
    // ... up to their own limit (256 MiB): 413 with the JSON error body.
    let (ct, mp) = multipart(&[("huge.bin", &vec![0u8; 257 * 1024 * 1024])]);
    assert_refused(
        send(&api, reqwest::Method::POST, &att, &ct, mp),
        413,
        "larger than",
    );

    // Lists that are not results have a count bound, named in the answer.
    let tags: Vec<String> = (0..2000).map(|i| format!("t{i}")).collect();
    assert_refused(
        api.post_raw(
            "/api/launch",
            &json!({"name": "x", "projectId": 1, "tags": tags}),
        ),
        400,
        "`tags`",
    );
    assert_refused(
        api.post_raw(
            "/api/launch",
            &json!({"name": "x", "projectId": 1, "issues": [{"blob": "z".repeat(10_000)}]}),
        ),
        400,
        "`issues[0]`",
    );
    assert_refused(
        api.post_raw(
            "/api/upload/start",
            &json!({"projectId": 1, "job": {"uid": "j"}, "jobRun": {"uid": "r".repeat(5000)}}),
        ),
        400,
        "`jobRun.uid`",
    );
    let items: Vec<Value> = (0..5000)
        .map(|i| json!({"externalId": i.to_string()}))
        .collect();
    assert_refused(
        api.post_raw(
            "/api/launch/named-env/bulk",
            &json!({"launchId": launch, "items": items}),
        ),
        400,
        "`items`",
    );
    assert_refused(
        api.post_raw(
            &format!("/api/launch/{launch}/expected-job-runs"),
            &json!({"expectedJobRuns": -1}),
        ),
        400,
        "expectedJobRuns",
    );
    assert_clean_log(&server);
}

// ---------------------------------------------------------------- project isolation

/// Every route of the API, called with a project-2 token on project 1's
/// launch, job, job run, session, result, attachment, fixture and plan ids:
/// 404 everywhere (403 for admin-only operations), nothing changed.
#[test]
fn a_project_token_sees_nothing_of_another_project_on_any_route() {
    let server = TestServer::start();
    let admin = server.api();

    // Project 1: a CI job run with a session, a result, an attachment, a fixture.
    let start = admin.post(
        "/api/upload/start",
        &json!({"projectId": 1, "ci": {"type": "github"}, "job": {"uid": "iso-job", "name": "iso"},
                "jobRun": {"uid": "7", "name": "run 7"}, "launch": {"name": "secret launch"}}),
    );
    let (launch, run, job) = (
        start["launchId"].as_i64().unwrap(),
        start["jobRunId"].as_i64().unwrap(),
        start["jobId"].as_i64().unwrap(),
    );
    let session = admin.post("/api/upload/session", &json!({"jobRunId": run}))["id"]
        .as_i64()
        .unwrap();
    let up = admin.post(
        "/api/upload/test-result",
        &json!({"testSessionId": session, "results": [{"uuid": "iso-1", "name": "t", "status": "passed",
                "attachments": [{"name": "log", "originalFileName": "log.txt"}]}]}),
    );
    let result = up["results"][0]["id"].as_i64().unwrap();
    let (ct, mp) = multipart(&[("log.txt", b"project one only")]);
    let (s, _) = send(
        &admin,
        reqwest::Method::POST,
        &format!("/api/upload/test-result/{result}/attachment"),
        &ct,
        mp,
    );
    assert_eq!(s, 202);
    let fixture = admin.post(
        &format!("/api/upload/test-result/{result}/test-fixture-result"),
        &json!({"fixtures": [{"type": "BEFORE", "uuid": "fx-1", "name": "setup", "status": "passed"}]}),
    )["resultIds"][0]
        .as_i64()
        .unwrap();
    let attachment = admin.get(&format!("/api/testresult/{result}"))["attachments"][0]["id"]
        .as_i64()
        .unwrap();
    let plan = admin.post(
        "/api/testplan",
        &json!({"projectId": 1, "name": "plan one", "filter": {"namePattern": "t"}}),
    )["id"]
        .as_i64()
        .unwrap();
    let case = admin.get("/api/testcase?projectId=1")["content"][0]["id"]
        .as_i64()
        .unwrap_or(1);
    let before = snapshot(&admin, launch, result);

    // Project 2 and its token.
    let (p2, token) = admin.project_with_token("other team");
    let other = admin.with_token(&token);

    let get = |path: String| ("GET", path, Value::Null);
    let post = |path: String, body: Value| ("POST", path, body);
    let start_body = |extra: Value| {
        let mut b = json!({"projectId": p2, "job": {"uid": "iso-job"}, "jobRun": {"uid": "7"}});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let not_found = vec![
        get(format!("/launch/{launch}")),
        ("DELETE", format!("/launch/{launch}"), Value::Null),
        post(format!("/launch/{launch}/close"), Value::Null),
        post(format!("/launch/{launch}/reopen"), Value::Null),
        get(format!("/launch/{launch}/progress")),
        get(format!("/launch/{launch}/statistic")),
        get(format!("/launch/{launch}/statistic/automated")),
        get(format!("/launch/{launch}/job")),
        get(format!("/launch/{launch}/manual")),
        post(
            format!("/launch/{launch}/manual"),
            json!({"results": [{"name": "m", "status": "passed"}]}),
        ),
        post(
            format!("/launch/{launch}/expected-job-runs"),
            json!({"expectedJobRuns": 3}),
        ),
        get("/launch?projectId=1".into()),
        post(
            "/launch".into(),
            json!({"name": "intruder", "projectId": 1}),
        ),
        post(
            "/launch/named-env/bulk".into(),
            json!({"launchId": launch, "items": [{"externalId": "x"}]}),
        ),
        post(
            "/launch/category/bulk".into(),
            json!({"launchId": launch, "items": [{"externalId": "x"}]}),
        ),
        post(
            "/launch/error/bulk".into(),
            json!({"launchId": launch, "items": []}),
        ),
        post(
            "/launch/quality-gate/bulk".into(),
            json!({"launchId": launch, "items": []}),
        ),
        post(
            "/upload/start".into(),
            json!({"projectId": 1, "job": {"uid": "iso-job"}, "jobRun": {"uid": "8"}}),
        ),
        post(
            "/upload/start".into(),
            start_body(json!({"launch": {"id": launch}})),
        ),
        post(
            "/upload/start".into(),
            start_body(json!({"jobRun": {"id": run, "uid": "7"}})),
        ),
        post(
            "/upload/run".into(),
            start_body(json!({"jobRun": {"id": run, "uid": "7"}})),
        ),
        post(
            "/upload/stop".into(),
            json!({"projectId": 1, "jobUid": "iso-job", "jobRunUid": "7"}),
        ),
        post(
            "/upload/stop".into(),
            json!({"projectId": p2, "jobRunId": run}),
        ),
        get(format!("/upload/jobrun?jobRunId={run}")),
        get("/upload/jobrun?projectId=1&jobUid=iso-job&jobRunUid=7".into()),
        post("/upload/session".into(), json!({"jobRunId": run})),
        post(
            "/upload/session?manual=true".into(),
            json!({"launchId": launch}),
        ),
        post(
            "/upload/test-result".into(),
            json!({"testSessionId": session, "results": [{"uuid": "intruder", "name": "x"}]}),
        ),
        post(
            format!("/upload/test-result/{result}/test-fixture-result"),
            json!({"fixtures": [{"type": "AFTER", "uuid": "fx-2", "name": "x"}]}),
        ),
        get("/job?projectId=1".into()),
        get("/job?projectId=1&externalId=iso-job".into()),
        get(format!("/job/{job}")),
        ("PATCH", format!("/job/{job}"), json!({"canRunTests": true})),
        ("PUT", format!("/job/{job}"), json!({"canRunTests": true})),
        get("/project/1/job".into()),
        get(format!("/jobrun/{run}")),
        get(format!("/jobrun/{run}/plan")),
        get(format!("/testresult?launchId={launch}")),
        get(format!("/testresult/{result}")),
        get(format!("/attachment/{attachment}/content")),
        get("/testcase?projectId=1".into()),
        get(format!("/testcase/{case}")),
        post(
            "/testcase/run".into(),
            json!({"projectId": 1, "testCaseIds": [case], "launchName": "x"}),
        ),
        get("/testplan?projectId=1".into()),
        post(
            "/testplan".into(),
            json!({"projectId": 1, "name": "intruder plan"}),
        ),
        get(format!("/testplan/{plan}")),
        get(format!("/testplan/{plan}/executors")),
        post(
            format!("/testplan/{plan}/executors"),
            json!({"testCaseIds": [case], "manual": true}),
        ),
        post(
            format!("/testplan/{plan}/run"),
            json!({"launchName": "intruder run"}),
        ),
    ];
    for prefix in ["/api", "/api/rs"] {
        for (method, path, body) in &not_found {
            let full = format!("{prefix}{path}");
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let bytes = if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            };
            let (status, answer) = send(&other, m, &full, "application/json", bytes);
            assert_eq!(status, 404, "{method} {full} answered {status}: {answer}");
            let text = answer.to_string();
            assert!(
                !text.contains("secret launch") && !text.contains("iso-job"),
                "{method} {full} leaked: {text}"
            );
        }
        // Another project's id inside a body is answered exactly like an id
        // that does not exist at all.
        {
            let full = format!("{prefix}/testcase/run");
            let body = json!({"projectId": p2, "testCaseIds": [case], "launchName": "x"});
            let foreign = other.post_raw(&full, &body);
            let mut absent = body.clone();
            absent["testCaseIds"] = json!([999_999]);
            let absent = other.post_raw(&full, &absent);
            assert!(
                foreign.0 == 404 || foreign.0 == absent.0,
                "{full}: {foreign:?}"
            );
            let normalise = |v: &Value| {
                v["message"]
                    .as_str()
                    .unwrap_or_default()
                    .replace(&case.to_string(), "N")
                    .replace("999999", "N")
            };
            assert_eq!(normalise(&foreign.1), normalise(&absent.1), "{full}");
        }
        // Multipart routes.
        for path in [
            format!("/upload/test-result/{result}/attachment"),
            format!("/upload/test-fixture-result/{fixture}/attachment"),
            format!("/upload/file?id={session}"),
            format!("/upload?id={session}"),
            format!("/launch/attachment?launchId={launch}"),
        ] {
            let (ct, mp) = multipart(&[("intruder.txt", b"x")]);
            let full = format!("{prefix}{path}");
            let (status, answer) = send(&other, reqwest::Method::POST, &full, &ct, mp);
            assert_eq!(status, 404, "POST {full} answered {status}: {answer}");
        }
        // Admin-only operations: 403.
        assert_eq!(
            other
                .post_raw(&format!("{prefix}/project"), &json!({"name": "x"}))
                .0,
            403
        );
        assert_eq!(
            other
                .post_raw(&format!("{prefix}/project/1/token"), &Value::Null)
                .0,
            403
        );
        // The project list shows only its own project.
        let projects = other.get(&format!("{prefix}/project"));
        let ids: Vec<i64> = projects["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [p2]);
    }
    // A bearer token exchanged from the project token is just as confined.
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/uaa/oauth/token", server.url))
        .form(&[("grant_type", "apitoken"), ("token", token.as_str())])
        .send()
        .unwrap();
    let access: Value = r.json().unwrap();
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/api/launch/{launch}", server.url))
        .bearer_auth(access["access_token"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Project 1 is exactly as it was, and the admin still sees everything.
    assert_eq!(snapshot(&admin, launch, result), before);
    assert_clean_log(&server);
}

/// What the isolation walk must not change.
fn snapshot(api: &Api, launch: i64, result: i64) -> Value {
    json!({
        "launch": api.get(&format!("/api/launch/{launch}")),
        "runs": api.get(&format!("/api/launch/{launch}/job")),
        "results": api.results(launch),
        "result": api.get(&format!("/api/testresult/{result}")),
        "launches": api.launches(1).len(),
        "plans": api.get("/api/testplan?projectId=1"),
    })
}

// ---------------------------------------------------------------- secrets

#[test]
fn secrets_stay_out_of_the_database_the_answers_and_the_request_log() {
    const SECRET: &str = "s3cr3t-value-9f1e77";
    const QUERY_SECRET: &str = "query-token-5ad2c1";
    // The request log is on: every request is logged with its URI.
    let server = TestServer::start_logging(None, &[], "info,tower_http=debug");
    let api = server.api();

    // Straight over the API: secret-looking session variables.
    let (launch, _) = manual_session(&api, "secrets");
    let s = api.post(
        "/api/upload/session?manual=true",
        &json!({"launchId": launch, "environment": [
            {"key": "DB_PASSWORD", "value": SECRET},
            {"key": "MY_API_TOKEN", "value": SECRET},
            {"key": "aws_secret_access_key", "value": SECRET},
            {"key": "DEPLOY_KEY", "value": SECRET},
            {"key": "OS", "value": "linux"}]}),
    );
    assert!(!s.to_string().contains(SECRET));
    // A token in a query string (not how tokens are sent, but clients do it).
    let (status, _) = api.get_raw(&format!(
        "/api/testresult?launchId={launch}&token={QUERY_SECRET}&access_token={QUERY_SECRET}"
    ));
    assert_eq!(status, 200);

    // Through the CLI: a secret in the CI environment and in
    // environment.properties of the results.
    let dir = server.work_dir().join("results");
    generate_results(&dir, "sec", 5);
    write(
        &dir.join("environment.properties"),
        format!("Browser=firefox\nSERVICE_PASSWORD={SECRET}\nApi.Token={SECRET}\n"),
    );
    let run = server
        .cli()
        .github("4242", "tests")
        .env("GITHUB_TOKEN", SECRET)
        .env("NPM_AUTH_TOKEN", SECRET)
        .run(&["upload", dir.to_str().unwrap()])
        .ok();
    assert!(!run.all().contains(SECRET) && !run.all().contains(TOKEN));

    // No answer of any read route shows it.
    let cli_launch = api.launches(1)[0]["id"].as_i64().unwrap();
    for l in [launch, cli_launch] {
        for path in [
            format!("/api/launch/{l}"),
            format!("/api/launch/{l}/job"),
            format!("/api/launch/{l}/statistic"),
            format!("/api/testresult?launchId={l}"),
        ] {
            let v = api.get(&path);
            assert!(!v.to_string().contains(SECRET), "{path}: {v}");
        }
        for r in api.results(l) {
            let v = api.get(&format!("/api/testresult/{}", r["id"]));
            assert!(!v.to_string().contains(SECRET), "{v}");
        }
    }
    // Not in the database files (the WAL included).
    let data = server.work_dir().join("data");
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            for secret in [SECRET, TOKEN] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{} holds a secret",
                    p.display()
                );
            }
        }
    }
    // The request log recorded the requests, but no secret.
    let log = strip_ansi(&server.log());
    assert!(
        log.contains("/api/upload/test-result") && log.contains("finished processing request"),
        "the request log is not on:\n{log}"
    );
    assert!(log.contains("token=<redacted>"), "{log}");
    for secret in [SECRET, QUERY_SECRET, TOKEN] {
        assert!(
            !log.contains(secret),
            "the server log shows {secret}:\n{log}"
        );
    }
    assert!(!log.to_ascii_lowercase().contains("authorization"));
    assert_clean_log(&server);
}
