//! What a result batch keeps while it waits for the writer is only what its
//! rows read (`db::result_rows::ResultBatch`): everything else a result
//! carries must still be stored whole, in its JSON, its attachment rows and
//! its test case.

use serde_json::{json, Value};

use super::{TestApp, ADMIN};

/// A result with a bit of everything: labels, parameters, links, a
/// description, attachments at the top level and two levels into its steps.
fn full_result() -> Value {
    json!({
        "uuid": "u-full",
        "historyId": "h-full",
        "name": "test_everything",
        "fullName": "tests/test_all.py::test_everything",
        "description": "what it checks",
        "status": "failed",
        "statusDetails": {"message": "boom", "trace": "Traceback"},
        "message": "boom",
        "trace": "Traceback",
        "start": 1000,
        "stop": 1500,
        "labels": [
            {"name": "suite", "value": "tests.test_all"},
            {"name": "tag", "value": "smoke"},
            {"name": "host", "value": "runner-1"}
        ],
        "parameters": [{"name": "n", "value": "3"}],
        "links": [{"name": "JIRA-1", "url": "https://jira.example/JIRA-1", "type": "issue"}],
        "attachments": [{"name": "log", "originalFileName": "top-attachment.txt", "contentType": "text/plain"}],
        "steps": [
            {
                "body": "outer",
                "status": "passed",
                "attachment": {"name": "shot", "originalFileName": "outer-attachment.png", "contentType": "image/png"},
                "steps": [
                    {
                        "body": "inner",
                        "status": "failed",
                        "parameters": [{"name": "k", "value": "v"}],
                        "attachment": {"name": "dump", "originalFileName": "inner-attachment.txt", "contentType": "text/plain"}
                    }
                ]
            },
            {"body": "teardown", "status": "passed"}
        ]
    })
}

#[tokio::test]
async fn a_result_is_stored_whole_though_its_batch_waits_with_its_columns_only() {
    let app = TestApp::new().await;
    let (launch, session) = app.launch_session(ADMIN, 1, "whole").await;
    let ids = app
        .upload_results(
            ADMIN,
            session,
            &[full_result(), json!({"uuid": "u-bare", "name": "bare"})],
        )
        .await;
    assert_eq!(ids.len(), 2);
    let stored = app
        .get(&format!("/api/testresult/{}", ids[0]), ADMIN)
        .await
        .expect(200)
        .body;

    // The stored JSON is the result as decoded, every field of it.
    let sent: onelaunch_api::UploadTestResult = serde_json::from_value(full_result()).unwrap();
    assert_eq!(stored["result"], serde_json::to_value(&sent).unwrap());
    assert_eq!(stored["result"]["steps"][0]["steps"][0]["body"], "inner");
    assert_eq!(
        stored["result"]["links"][0]["url"],
        "https://jira.example/JIRA-1"
    );

    // An attachment row for each attachment declared, the steps' included.
    let rows: Vec<(&str, &str, &str)> = stored["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["fileName"].as_str().unwrap(),
                a["contentType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("log", "top-attachment.txt", "text/plain"),
            ("shot", "outer-attachment.png", "image/png"),
            ("dump", "inner-attachment.txt", "text/plain"),
        ]
    );

    // The columns, and the test case with the labels it keeps.
    let listed = app
        .get(&format!("/api/testresult?launchId={launch}&size=10"), ADMIN)
        .await
        .expect(200)
        .body;
    let row = listed["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == ids[0])
        .unwrap()
        .clone();
    assert_eq!(
        (&row["status"], &row["message"], &row["start"], &row["stop"]),
        (&json!("failed"), &json!("boom"), &json!(1000), &json!(1500))
    );
    assert_eq!(row["attachmentCount"], 3);
    let case = app.test_case(1, "test_everything").await;
    assert_eq!(
        case["labels"],
        json!([
            {"name": "suite", "value": "tests.test_all"},
            {"name": "tag", "value": "smoke"}
        ])
    );
    assert_eq!(case["fullName"], "tests/test_all.py::test_everything");
    assert_eq!(case["lastStatus"], "failed");
}
