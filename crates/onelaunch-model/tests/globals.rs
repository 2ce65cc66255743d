//! `*-globals.json` of a real allure-mocha run (`tests/fixtures/frameworks/allure-mocha/`):
//! the error of the failing `beforeEach` hook and the attachment added with
//! `allure.globalAttachment`, which belong to no test.

use std::path::PathBuf;

use onelaunch_model::{classify, parse_globals, FileKind, ModelError};

fn results_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/frameworks/allure-mocha/allure-results")
}

fn expected(key: &str) -> usize {
    let text = std::fs::read_to_string(results_dir().join("../expected.txt")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_globals_of_a_real_allure_mocha_run_are_read() {
    let mut errors = Vec::new();
    let mut attachments = Vec::new();
    for entry in std::fs::read_dir(results_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if classify(&name) != FileKind::Globals {
            continue;
        }
        let g = parse_globals(&std::fs::read(&path).unwrap()).unwrap();
        errors.extend(g.errors);
        attachments.extend(g.attachments);
    }
    // mocha's own count of failing hooks.
    assert_eq!(errors.len(), expected("global_errors"));
    let e = &errors[0];
    assert_eq!(
        e.message.as_deref(),
        Some("\"before each\" hook: connect failed: database is not reachable")
    );
    assert!(e.trace.as_deref().unwrap().contains("sample.spec.js"));
    assert!(e.timestamp.is_some());

    assert_eq!(attachments.len(), 1);
    let a = &attachments[0];
    assert_eq!(a.name, "server.log");
    assert_eq!(a.r#type.as_deref(), Some("text/plain"));
    assert!(onelaunch_model::is_safe_source(&a.source));
    let content = std::fs::read_to_string(results_dir().join(&a.source)).unwrap();
    assert_eq!(content, "server started on port 8080\n");
}

#[test]
fn a_damaged_globals_file_is_an_error_naming_the_field() {
    assert_eq!(parse_globals(b"").unwrap_err(), ModelError::Empty);
    assert!(matches!(
        parse_globals(b"{\"errors\": [").unwrap_err(),
        ModelError::Json { .. }
    ));
    let e = parse_globals(br#"{"errors": [{"message": 7}]}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid type for field `errors[0].message`: expected a string, found a number"
    );
    let e = parse_globals(br#"{"attachments": [{"name": "log"}]}"#).unwrap_err();
    assert_eq!(e.to_string(), "missing field `attachments[0].source`");
    // Both arrays are optional, null means absent.
    let g = parse_globals(br#"{"errors": null}"#).unwrap();
    assert!(g.errors.is_empty() && g.attachments.is_empty());
}
