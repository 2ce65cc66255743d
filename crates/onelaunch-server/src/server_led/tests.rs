//! Unit tests of the server-led domain.

use std::collections::BTreeSet;

use onelaunch_api as api;

use super::jobs::*;
use crate::db::test_cases::*;

#[test]
fn like_patterns() {
    assert_eq!(like_pattern("Cart"), "%cart%");
    assert_eq!(like_pattern("test_*"), "test\\_%");
    assert_eq!(like_pattern("a?c"), "a_c");
    assert_eq!(like_pattern("50%"), "%50\\%%");
}

#[test]
fn variable_names() {
    assert!(check_var_name("f", "BROWSER").is_ok());
    assert!(check_var_name("f", "x1").is_ok());
    for bad in [
        "ALLURE_JOB_RUN_ID",
        "_x1",
        "1A",
        "A-B",
        "",
        "LD_PRELOAD",
        "PATH",
    ] {
        let e = check_var_name("environment[2].key", bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("environment[2].key {bad:?}")), "{e}");
    }
}

#[test]
fn credentials_are_redacted_in_debug() {
    let s = api::IntegrationSettings {
        kind: "github".into(),
        credential: Some("ghp_secret_value".into()),
        ..Default::default()
    };
    assert!(!format!("{s:?}").contains("ghp_secret_value"));
    let integration = crate::integrations::Integration::validate(
        &api::IntegrationSettings {
            repository: Some("o/r".into()),
            workflow: Some("t.yml".into()),
            git_ref: Some("main".into()),
            ..s
        },
        None,
    )
    .unwrap();
    let c = JobConfig {
        integration: Some(integration),
        ..Default::default()
    };
    assert!(!format!("{c:?}").contains("ghp_secret_value"));
}

#[test]
fn prerequisite_messages_are_distinct_and_name_the_job() {
    let who = "job 1 (acme/shop_CI)";
    let all = [
        problem_never(who),
        problem_open(who, 7),
        problem_no_integration(1, who),
        problem_cannot_run(1, who),
    ];
    for m in &all {
        assert!(m.contains(who), "{m}");
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), 4);
}

#[test]
fn plan_entries() {
    let mut c = CaseRow {
        id: 9,
        project_id: 1,
        name: "n".into(),
        full_name: Some("test_shop#test_x".into()),
        allure_id: Some("101".into()),
        labels: vec![],
        last_status: None,
        job_id: None,
        job_name: None,
        job_type: None,
        job_url: None,
        created_ms: 0,
        modified_ms: 0,
    };
    assert_eq!(c.plan_entry(), (101, "test_shop#test_x".to_string()));
    c.allure_id = Some("ABC-1".into());
    c.full_name = None;
    // No numeric ALLURE_ID: no id (the internal case id would select an
    // unrelated test carrying that ALLURE_ID); the selector names it.
    assert_eq!(c.plan_entry(), (0, "n".to_string()));
}
