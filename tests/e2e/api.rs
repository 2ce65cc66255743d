//! The HTTP API as the Allure 3 TestOps plugin and allurectl-style clients use
//! it: shapes, prefixes, auth schemes, raw-file upload, errors.

use serde_json::{json, Value};

use crate::support::*;

#[test]
fn plugin_318_flow_with_string_project_id_and_both_result_shapes() {
    let server = TestServer::start();
    let api = server.api();
    // The plugin sends projectId as a string and tags as objects.
    let launch = api.post(
        "/api/launch",
        &json!({"name": "compat run", "projectId": "1", "autoclose": true, "external": true,
                "tags": [{"name": "a"}, {"name": "b"}]}),
    );
    let lid = launch["id"].as_i64().unwrap();
    assert_eq!(launch["closed"], false);
    // Unknown job: 404 on the old prefix.
    assert_eq!(
        api.get_raw("/api/rs/job?projectId=1&externalId=o/r_wf").0,
        404
    );
    let start = api.post(
        "/api/upload/start",
        &json!({"projectId": "1", "ci": {"type": "github", "endpoint": "https://github.com"},
                "job": {"name": "o/r - wf", "uid": "o/r_wf", "parameters": [{"name": "Branch", "defaultValue": "main"}]},
                "jobRun": {"uid": "42", "name": "build #1", "parameters": [{"name": "Branch", "value": "main"}]},
                "launch": {"id": lid}}),
    );
    assert_eq!(start["launchId"], lid);
    let jr = start["jobRunId"].as_i64().unwrap();
    // Now the job is known.
    let job = api.get("/api/rs/job?projectId=1&externalId=o/r_wf");
    assert_eq!(job["externalId"], "o/r_wf");
    // Joining by jobRun.id answers that job run and its launch.
    let again = api.post(
        "/api/upload/start",
        &json!({"projectId": 1, "jobRun": {"id": jr, "uid": "ignored"}}),
    );
    assert_eq!(again["launchId"], lid);
    assert_eq!(again["jobRunId"], jr);

    let session = api.post(
        "/api/upload/session",
        &json!({"jobRunId": jr, "environment": [
        {"key": "OS", "value": "linux"}, {"key": "AWS_SECRET_ACCESS_KEY", "value": "hunter2"}]}),
    );
    let sid = session["id"].as_i64().unwrap();
    assert_eq!(session["launchId"], lid);
    let body = json!({"testSessionId": sid, "results": [
        {"uuid": "u-1", "historyId": "h-1", "name": "first", "fullName": "t.first", "status": "PASSED", "start": 1000, "stop": 1500,
         "steps": [{"type": "body", "body": "open page", "status": "passed", "steps": [
            {"type": "attachment", "attachment": {"name": "shot", "originalFileName": "shot.png", "contentType": "image/png"}}]}],
         "attachments": [{"name": "log", "originalFileName": "log.txt", "contentType": "text/plain"}],
         "labels": [{"name": "feature", "value": "login"}]},
        {"uuid": "u-2", "historyId": "h-2", "name": "second", "status": "failed", "message": "boom", "start": 1000}
    ]});
    let up = api.post("/api/upload/test-result", &body);
    assert_eq!(up["results"].as_array().unwrap().len(), 2);
    assert_eq!(up["results"][0]["uuid"], "u-1");
    assert_eq!(up["resultIds"][0], up["results"][0]["id"]);
    // Re-sending is a no-op returning the same ids.
    let again = api.post("/api/upload/test-result", &body);
    assert_eq!(again["resultIds"], up["resultIds"]);
    let rid = up["results"][0]["id"].as_i64().unwrap();

    // Attachment bytes by file name, via multipart, on the /api/rs prefix.
    let form = reqwest::blocking::multipart::Form::new()
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(b"hello log".to_vec())
                .file_name("log.txt")
                .mime_str("text/plain")
                .unwrap(),
        )
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(vec![0x89, b'P', b'N', b'G'])
                .file_name("shot.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let r = api
        .http
        .post(format!(
            "{}/api/rs/upload/test-result/{rid}/attachment",
            server.url
        ))
        .header("Authorization", format!("Api-Token {TOKEN}"))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let fx = api.post(
        &format!("/api/upload/test-result/{rid}/test-fixture-result"),
        &json!({"fixtures": [{"type": "BEFORE", "uuid": "f1", "name": "db", "status": "passed", "steps": []}]}),
    );
    assert!(fx["resultIds"].is_array());
    // Fixture attachments by fixture id (kept with the fixture's result).
    let fixture_id = fx["resultIds"][0].as_i64().unwrap();
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(b"db ready".to_vec())
            .file_name("db-setup.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let r = api
        .http
        .post(format!(
            "{}/api/upload/test-fixture-result/{fixture_id}/attachment",
            server.url
        ))
        .header("Authorization", format!("api-token {TOKEN}"))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let detail = api.get(&format!("/api/testresult/{rid}"));
    let atts = detail["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 3);
    assert!(atts.iter().all(|a| a["stored"] == true), "{atts:?}");
    let log = atts.iter().find(|a| a["fileName"] == "log.txt").unwrap();
    let bytes = api
        .http
        .get(format!(
            "{}/api/attachment/{}/content",
            server.url, log["id"]
        ))
        .header("Authorization", format!("api-token {TOKEN}"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(&bytes[..], b"hello log");
    assert_eq!(detail["fixtures"].as_array().unwrap().len(), 1);

    // The launch-scoped extras the plugin calls.
    let envs = api.post(
        "/api/launch/named-env/bulk",
        &json!({"launchId": lid, "items": [{"externalId": "linux", "name": "Linux"}]}),
    );
    assert_eq!(envs[0]["externalId"], "linux");
    let envs2 = api.post(
        "/api/launch/named-env/bulk",
        &json!({"launchId": lid, "items": [{"externalId": "linux", "name": "Linux"}]}),
    );
    assert_eq!(envs2[0]["id"], envs[0]["id"]);
    api.post(
        "/api/launch/category/bulk",
        &json!({"launchId": lid, "items": [{"externalId": "c1", "name": "Product defects"}]}),
    );
    api.post(
        "/api/launch/error/bulk",
        &json!({"launchId": lid, "items": [{"message": "x"}]}),
    );
    api.post(
        "/api/launch/quality-gate/bulk",
        &json!({"launchId": lid, "items": []}),
    );

    // stop, progress, statistic, close.
    api.post(
        "/api/upload/stop",
        &json!({"projectId": "1", "jobUid": "o/r_wf", "jobRunUid": "42", "status": "failed"}),
    );
    let run = api.get(&format!("/api/jobrun/{jr}"));
    assert_eq!(run["stage"], "finished");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["launchId"], lid);
    assert_eq!(
        api.get(&format!("/api/launch/{lid}/progress"))["ready"],
        true
    );
    let stat = api.statistic(lid);
    assert_eq!(stat.get("passed"), Some(&1));
    assert_eq!(stat.get("failed"), Some(&1));
    let found = api.get("/api/upload/jobrun?projectId=1&jobUid=o/r_wf&jobRunUid=42");
    assert_eq!(found["jobRunId"], jr);
    api.post(&format!("/api/launch/{lid}/close"), &Value::Null);
    assert_eq!(api.get(&format!("/api/rs/launch/{lid}"))["closed"], true);
    let (status, _) = api.post_raw("/api/upload/test-result", &body);
    assert_eq!(status, 409);
    api.post(&format!("/api/launch/{lid}/reopen"), &Value::Null);
    assert_eq!(api.get(&format!("/api/launch/{lid}"))["closed"], false);
    // The secret-looking session variable was not stored or logged.
    assert!(!server.log().contains("hunter2"));
}

#[test]
fn oauth_exchange_accepts_form_and_multipart() {
    let server = TestServer::start();
    let http = reqwest::blocking::Client::new();
    let url = format!("{}/api/uaa/oauth/token", server.url);
    let r = http
        .post(&url)
        .header("Authorization", "Basic YWNtZTphY21lc2VjcmV0")
        .form(&[
            ("grant_type", "apitoken"),
            ("scope", "openid"),
            ("token", TOKEN),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().unwrap();
    let access = v["access_token"].as_str().unwrap().to_string();
    assert!(v["expires_in"].as_i64().unwrap() > 0);
    let r = http
        .get(format!("{}/api/launch?projectId=1", server.url))
        .bearer_auth(&access)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let form = reqwest::blocking::multipart::Form::new()
        .text("grant_type", "apitoken")
        .text("scope", "openid")
        .text("token", TOKEN);
    let r = http.post(&url).multipart(form).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let r = http
        .post(&url)
        .form(&[("grant_type", "apitoken"), ("token", "not-a-token")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .get(format!("{}/api/launch?projectId=1", server.url))
        .bearer_auth("forged")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[test]
fn raw_result_files_are_parsed_on_the_server() {
    let server = TestServer::start();
    let api = server.api();
    let launch = api.post("/api/launch", &json!({"name": "raw", "projectId": 1}));
    let lid = launch["id"].as_i64().unwrap();
    let session = api.post("/api/upload/session?manual=true", &json!({"launchId": lid}));
    let sid = session["id"].as_i64().unwrap();
    let dir = fixture("examples/pipelines/github-unit/allure-results");
    let mut form = reqwest::blocking::multipart::Form::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        form = form.part(
            "file",
            reqwest::blocking::multipart::Part::bytes(std::fs::read(&p).unwrap()).file_name(name),
        );
    }
    form = form.part(
        "file",
        reqwest::blocking::multipart::Part::bytes(b"{\"uuid\": 12".to_vec())
            .file_name("bad-result.json"),
    );
    let r = api
        .http
        .post(format!("{}/api/upload/file?id={sid}", server.url))
        .header("Authorization", format!("api-token {TOKEN}"))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "a bad file is reported");
    let body: Value = r.json().unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("bad-result.json"),
        "{body}"
    );
    // …and the good ones were stored anyway, with attachments and fixtures.
    let results = api.results(lid);
    assert_eq!(results.len(), count_files(&dir, "-result.json"));
    assert!(results
        .iter()
        .any(|r| r["fixtureCount"].as_i64().unwrap() > 0));
    let with_att = results
        .iter()
        .find(|r| r["attachmentCount"].as_i64().unwrap() > 0)
        .unwrap();
    let detail = api.get(&format!("/api/testresult/{}", with_att["id"]));
    assert!(
        detail["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["stored"] == true),
        "{detail}"
    );
}

#[test]
fn bad_requests_get_4xx_naming_the_field() {
    let server = TestServer::start();
    let api = server.api();
    let (s, v) = api.post_raw("/api/launch", &json!({"name": "x", "projectId": "seven"}));
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("projectId"), "{v}");
    let (s, v) = api.post_raw(
        "/api/upload/start",
        &json!({"projectId": 1, "job": {"uid": ""}, "jobRun": {"uid": "1"}}),
    );
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("job.uid"), "{v}");
    let launch = api.post("/api/launch", &json!({"name": "x", "projectId": 1}));
    let session = api.post(
        "/api/upload/session?manual=true",
        &json!({"launchId": launch["id"]}),
    );
    let (s, v) = api.post_raw(
        "/api/upload/test-result",
        &json!({"testSessionId": session["id"], "results": [{"uuid": "a", "start": "soon"}]}),
    );
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("start"), "{v}");
    let r = api
        .http
        .post(format!("{}/api/launch", server.url))
        .header("Authorization", format!("api-token {TOKEN}"))
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(api.get_raw("/api/launch/999999").0, 404);
    assert_eq!(api.get_raw("/api/jobrun/999999").0, 404);
}
