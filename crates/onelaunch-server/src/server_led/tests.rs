//! Unit tests of the server-led domain.

use std::collections::BTreeSet;

use onelaunch_api::{self as api, Id};
use sqlx::Row;

use super::{cases::*, jobs::*};
use crate::db::test_cases::*;
use crate::db::{get_i64, get_str, Db};

fn result(
    labels: &[(&str, &str)],
    tcid: Option<&str>,
    full: Option<&str>,
) -> api::UploadTestResult {
    api::UploadTestResult {
        uuid: "u".into(),
        name: "n".into(),
        test_case_id: tcid.map(str::to_string),
        full_name: full.map(str::to_string),
        labels: labels
            .iter()
            .map(|(n, v)| api::LabelDto {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn identity_precedence() {
    assert_eq!(
        identity_of(&result(&[("as_id", "101")], Some("t"), Some("f"))),
        "allure:101"
    );
    assert_eq!(
        identity_of(&result(&[("ALLURE_ID", " 7 ")], None, None)),
        "allure:7"
    );
    assert_eq!(identity_of(&result(&[], Some("t"), Some("f"))), "tcid:t");
    assert_eq!(identity_of(&result(&[], Some(" "), Some("f"))), "full:f");
    assert_eq!(identity_of(&result(&[], None, None)), "name:n");
}

#[test]
fn volatile_labels_are_dropped() {
    let r = result(
        &[
            ("host", "h1"),
            ("thread", "1"),
            ("tag", "smoke"),
            ("tag", "smoke"),
        ],
        None,
        None,
    );
    let l = case_labels(&r.labels);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].name, "tag");
}

#[test]
fn like_patterns() {
    assert_eq!(like_pattern("Cart"), "%cart%");
    assert_eq!(like_pattern("test_*"), "test\\_%");
    assert_eq!(like_pattern("a?c"), "a_c");
    assert_eq!(like_pattern("50%"), "%50\\%%");
}

#[test]
fn variable_names() {
    assert!(valid_var_name("ALLURE_JOB_RUN_ID"));
    assert!(valid_var_name("_x1"));
    assert!(!valid_var_name("1A"));
    assert!(!valid_var_name("A-B"));
    assert!(!valid_var_name(""));
}

#[test]
fn credentials_are_redacted_in_debug() {
    let s = api::IntegrationSettings {
        kind: "github".into(),
        credential: Some("ghp_secret_value".into()),
        ..Default::default()
    };
    assert!(!format!("{s:?}").contains("ghp_secret_value"));
    let c = JobConfig {
        credential: Some("ghp_secret_value".into()),
        integration: Some(s),
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
    assert_eq!(c.plan_entry(), (9, "n".to_string()));
}

fn case(identity: &str, labels: &[(&str, &str)], status: &'static str, start: i64) -> CaseUpdate {
    CaseUpdate {
        identity: identity.into(),
        allure_id: None,
        name: format!("name of {identity}"),
        full_name: None,
        labels: labels
            .iter()
            .map(|(n, v)| api::LabelDto {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        status,
        start,
        result_id: start,
        job_id: None,
    }
}

/// (last status, last start, labels JSON, label rows as "name=value").
async fn stored_case(db: &Db, id: Id) -> (String, i64, String, Vec<String>) {
    let r = sqlx::query("SELECT last_status, last_start_ms, labels FROM test_cases WHERE id = $1")
        .bind(id)
        .fetch_one(&db.read)
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT name, value FROM test_case_labels WHERE test_case_id = $1 ORDER BY name, value",
    )
    .bind(id)
    .fetch_all(&db.read)
    .await
    .unwrap();
    (
        get_str(&r, "last_status").unwrap(),
        get_i64(&r, "last_start_ms").unwrap(),
        get_str(&r, "labels").unwrap(),
        rows.iter()
            .map(|l| {
                format!(
                    "{}={}",
                    get_str(l, "name").unwrap(),
                    get_str(l, "value").unwrap()
                )
            })
            .collect(),
    )
}

#[tokio::test]
async fn upserting_cases_keeps_the_latest_status_and_the_labels_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let db = Db::connect(&url).await.unwrap();
    crate::db::projects::bootstrap(&db, Some("t"))
        .await
        .unwrap();
    let upsert = |updates: Vec<CaseUpdate>| {
        let db = db.clone();
        async move {
            let mut conn = db.write.acquire().await.unwrap();
            upsert_cases(&mut conn, 1, &updates).await.unwrap()
        }
    };

    // More cases than one statement takes: ids come back in input order.
    let many: Vec<CaseUpdate> = (0..150)
        .map(|i| case(&format!("full:c{i:03}"), &[("suite", "s")], "passed", 10))
        .collect();
    let ids = upsert(many).await;
    assert_eq!(ids.len(), 150);
    for (i, id) in ids.iter().enumerate() {
        let identity: String = sqlx::query("SELECT identity FROM test_cases WHERE id = $1")
            .bind(*id)
            .fetch_one(&db.read)
            .await
            .unwrap()
            .get("identity");
        assert_eq!(identity, format!("full:c{i:03}"));
    }
    let first = ids[0];
    let labels = r#"[{"name":"suite","value":"s"}]"#.to_string();
    assert_eq!(
        stored_case(&db, first).await,
        ("passed".into(), 10, labels.clone(), vec!["suite=s".into()])
    );

    // An older attempt changes neither the status nor the labels.
    let again = upsert(vec![case("full:c000", &[("suite", "s")], "failed", 5)]).await;
    assert_eq!(again, vec![first]);
    assert_eq!(
        stored_case(&db, first).await,
        ("passed".into(), 10, labels, vec!["suite=s".into()])
    );

    // A newer one with other labels replaces both.
    upsert(vec![case(
        "full:c000",
        &[("tag", "b"), ("tag", "a")],
        "broken",
        20,
    )])
    .await;
    assert_eq!(
        stored_case(&db, first).await,
        (
            "broken".into(),
            20,
            r#"[{"name":"tag","value":"b"},{"name":"tag","value":"a"}]"#.into(),
            vec!["tag=a".into(), "tag=b".into()]
        )
    );
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM test_cases")
        .fetch_one(&db.read)
        .await
        .unwrap()
        .get("n");
    assert_eq!(n, 150);
}
