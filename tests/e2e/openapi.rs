//! The API description the real server serves at `/api/openapi.json`,
//! checked by real OpenAPI tools (scripts/tools/openapi.sh): the document is
//! valid OpenAPI 3 (`openapi-spec-validator`), and generated requests
//! (`schemathesis`) get answers that match it and are never 5xx.

use std::process::Command;

use serde_json::{json, Value};

use crate::support::*;

/// Whether `module` imports in the Python the tools were installed into.
fn python_tool(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("ONELAUNCH_REQUIRE_RUNNERS").is_ok() {
            panic!("python3 module {module} is not installed: run scripts/tools/openapi.sh");
        }
        eprintln!("SKIPPED: python3 module {module} not installed; run scripts/tools/openapi.sh");
    }
    ok
}

/// The document, fetched without a token.
fn fetch_description(server: &TestServer) -> Value {
    let resp = reqwest::blocking::get(format!("{}/api/openapi.json", server.url)).unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    resp.json().unwrap()
}

/// Runs `openapi-spec-validator` on `doc`: its exit status and output.
fn validate(doc: &Value) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_served_description_is_valid_openapi_3() {
    if !python_tool("openapi_spec_validator") {
        return;
    }
    let server = TestServer::start();
    let doc = fetch_description(&server);
    assert!(doc["paths"].as_object().unwrap().len() > 50);
    let (ok, out) = validate(&doc);
    assert!(
        ok,
        "openapi-spec-validator rejects /api/openapi.json:\n{out}"
    );
    assert!(out.contains("OK"), "{out}");
    // The validator does reject broken documents: without `info`, and with
    // a parameter in no valid place.
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("info");
    let (ok, out) = validate(&broken);
    assert!(!ok, "a document without info passed the validator:\n{out}");
    let mut broken = doc.clone();
    broken["paths"]["/launch/{id}"]["get"]["parameters"][0]["in"] = json!("body");
    let (ok, out) = validate(&broken);
    assert!(!ok, "a parameter in the body passed the validator:\n{out}");
}

#[test]
fn generated_requests_get_documented_answers_and_no_server_error() {
    if !python_tool("schemathesis") {
        return;
    }
    let server = TestServer::start();
    let admin = server.api();
    let project = admin.post("/api/project", &json!({"name": "described"}))["id"]
        .as_i64()
        .unwrap();
    let token = admin.post(&format!("/api/project/{project}/token"), &json!({}))["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Something to find, so that some answers carry data.
    let api = admin.with_token(&token);
    api.post(
        "/api/launch",
        &json!({"name": "seeded", "projectId": project}),
    );
    // The document as served, from a file: fetched from its URL,
    // schemathesis would leave out the operation that serves it.
    let doc = fetch_description(&server);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(&path)
        .arg("--url")
        .arg(format!("{}/api", server.url))
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "5",
            "--phases",
            "examples,fuzzing",
            "--workers",
            "1",
            "--seed",
            "1",
            "--header",
        ])
        .arg(format!("Authorization: Api-Token {token}"))
        .env("NO_COLOR", "1")
        // Its cache and reports go to the temporary directory.
        .current_dir(dir.path())
        .output()
        .unwrap();
    // Its reproduction commands would show the token: never print it.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .replace(&token, "<token>");
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert!(
        text.contains(&format!("Tested: {operations}")),
        "not all {operations} operations were tested:\n{text}"
    );
    // "N generated, N passed": every generated case passed.
    let cases = text
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or_else(|| panic!("no test case count:\n{text}"));
    let (generated, passed) = cases.trim().split_once(" generated, ").unwrap();
    assert_eq!(format!("{generated} passed"), passed, "{text}");
    // The server survived it and still answers.
    assert_eq!(api.get_raw("/api/project").0, 200);
}
