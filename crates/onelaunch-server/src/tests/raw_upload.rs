//! Raw files sent to `/api/upload/file` are read on the server by the model
//! crate the CLI uses: a JUnit report's captured output arrives there too, as
//! text attachments of its results.

use serde_json::json;

use super::{TestApp, ADMIN};

const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="com.example.CartTest" tests="2" failures="1" time="0.4">
  <testcase name="addsItem" classname="com.example.CartTest" time="0.1">
    <system-out>stdout of addsItem</system-out>
  </testcase>
  <testcase name="removesItem" classname="com.example.CartTest" time="0.3">
    <failure message="expected 0 but was 1" type="java.lang.AssertionError">at CartTest.removesItem</failure>
    <system-err>stderr of removesItem</system-err>
  </testcase>
</testsuite>
"#;

#[tokio::test]
async fn a_raw_junit_report_keeps_each_test_output_as_an_attachment() {
    let app = TestApp::new().await;
    let started = app
        .post(
            "/api/upload/start",
            ADMIN,
            &json!({"projectId": 1, "job": {"uid": "shop/ci"}, "jobRun": {"uid": "1"},
                    "launch": {"name": "raw"}}),
        )
        .await
        .expect(200);
    let session = app
        .post(
            "/api/upload/session",
            ADMIN,
            &json!({"jobRunId": started.id("jobRunId")}),
        )
        .await
        .expect(200)
        .id("id");
    app.upload(
        &format!("/api/upload/file?id={session}"),
        ADMIN,
        "TEST-com.example.CartTest.xml",
        REPORT,
    )
    .await
    .expect(202);

    let launch = started.id("launchId");
    let list = app
        .get(&format!("/api/testresult?launchId={launch}&size=10"), ADMIN)
        .await
        .expect(200);
    let rows = list.body["content"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2, "{}", list.body);
    for (name, status, output) in [
        ("addsItem", "passed", "stdout of addsItem"),
        ("removesItem", "failed", "stderr of removesItem"),
    ] {
        let row = rows.iter().find(|r| r["name"] == name).unwrap();
        assert_eq!(row["status"], status);
        let id = row["id"].as_i64().unwrap();
        let detail = app
            .get(&format!("/api/testresult/{id}"), ADMIN)
            .await
            .expect(200);
        let attachments = detail.body["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 1, "{}", detail.body);
        assert_eq!(attachments[0]["stored"], true, "{}", detail.body);
        assert_eq!(attachments[0]["contentType"], "text/plain");
        let a = attachments[0]["id"].as_i64().unwrap();
        let content = app
            .get(&format!("/api/attachment/{a}/content"), ADMIN)
            .await
            .expect(200);
        assert_eq!(content.body, json!(output));
    }
}
