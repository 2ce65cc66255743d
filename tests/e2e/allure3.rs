//! Compatibility with the real Allure 3 TestOps plugin (npm
//! `@allurereport/plugin-testops` 3.18.0, pinned in tests/compat/allure3):
//! the server accepts what it sends, and a downstream job using the plugin
//! joins a launch that `onelaunch job-run start` created upstream.

use std::path::PathBuf;
use std::process::Command;

use crate::support::*;

fn allure_cli() -> Option<PathBuf> {
    let p = repo().join("tests/compat/allure3/node_modules/.bin/allure");
    if p.exists() {
        return Some(p);
    }
    if std::env::var("ONELAUNCH_REQUIRE_RUNNERS").is_ok() {
        panic!("the Allure 3 CLI is not installed: run scripts/tools/allure3.sh");
    }
    eprintln!("SKIPPED: Allure 3 CLI not installed; run scripts/tools/allure3.sh");
    None
}

/// Runs `allure generate` with the TestOps plugin enabled against `server`.
fn allure_generate(server: &TestServer, results: &std::path::Path, env: &[(&str, String)]) -> Run {
    let allure = allure_cli().unwrap();
    let work = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "name": "compat",
        "output": work.path().join("report"),
        "plugins": {"testops": {"enabled": true, "options": {
            "endpoint": server.url, "accessToken": TOKEN, "projectId": "1",
            "launchName": "Allure 3 plugin", "launchTags": ["allure3"], "autocloseLaunch": false}}}
    });
    let config_path = work.path().join("allurerc.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let mut cmd = Command::new(allure);
    cmd.arg("generate")
        .arg(results)
        .arg("--config")
        .arg(&config_path)
        .current_dir(work.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", work.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let r = Run::from(cmd.output().expect("run allure"));
    assert_eq!(r.code, 0, "allure failed:\n{}\n{}", r.stdout, r.stderr);
    assert!(!r.all().contains("Failed"), "{}", r.all());
    r
}

#[test]
fn allure3_plugin_uploads_a_launch_with_attachments_and_fixtures() {
    if allure_cli().is_none() {
        return;
    }
    let server = TestServer::start();
    let api = server.api();
    let results = fixture("tests/fixtures/allure-pytest");
    let r = allure_generate(&server, &results, &[]);
    assert!(r.all().contains("/launch/1"), "{}", r.all());
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1);
    assert_eq!(launches[0]["name"], "Allure 3 plugin");
    let rs = api.results(1);
    // The plugin sends the report's tests (latest attempt of each).
    assert_eq!(rs.len(), 11);
    assert_eq!(api.statistic(1), expected_statistic(&[&results]));
    let with_att: Vec<_> = rs
        .iter()
        .filter(|r| r["attachmentCount"].as_i64().unwrap() > 0)
        .collect();
    assert_eq!(with_att.len(), 2, "the text and the PNG attachment");
    for r in with_att {
        let d = api.get(&format!("/api/testresult/{}", r["id"]));
        for a in d["attachments"].as_array().unwrap() {
            assert_eq!(a["stored"], true, "bytes correlated by file name: {a}");
        }
    }
    assert!(rs.iter().all(|r| r["fixtureCount"].as_i64().unwrap() > 0));
}

#[test]
fn allure3_plugin_in_a_downstream_job_joins_the_shared_launch() {
    if allure_cli().is_none() {
        return;
    }
    let server = TestServer::start();
    let api = server.api();
    // Upstream: onelaunch creates the shared launch and job run.
    let start = server.cli().github("777", "start");
    start
        .run(&["job-run", "start", "--launch-name", "Shared release"])
        .ok();
    let env = parse_env(&start.run(&["job-run", "env"]).ok().stdout);
    // Downstream job A: the plugin with ALLURE_JOB_RUN_ID uploads into that job run.
    let e2e = fixture("examples/pipelines/github-e2e/allure-results");
    allure_generate(
        &server,
        &e2e,
        &[("ALLURE_JOB_RUN_ID", env["ALLURE_JOB_RUN_ID"].clone())],
    );
    // Downstream pipeline B (another CI): the plugin in GitHub mode with ALLURE_LAUNCH_ID
    // creates its own job run inside the shared launch.
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    allure_generate(
        &server,
        &unit,
        &[
            ("ALLURE_LAUNCH_ID", env["ALLURE_LAUNCH_ID"].clone()),
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_REPOSITORY", "acme/web".into()),
            ("GITHUB_WORKFLOW", "ui".into()),
            ("GITHUB_RUN_ID", "888".into()),
            ("GITHUB_SERVER_URL", "https://github.com".into()),
        ],
    );
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "no extra launch: {launches:?}");
    let lid: i64 = env["ALLURE_LAUNCH_ID"].parse().unwrap();
    assert_eq!(api.statistic(lid), expected_statistic(&[&e2e, &unit]));
    let runs = api.job_runs(lid);
    assert_eq!(runs.len(), 2, "{runs:?}");
    let by_uid = |uid: &str| {
        runs.iter()
            .find(|r| r["externalId"] == uid)
            .unwrap_or_else(|| panic!("job run {uid}"))
            .clone()
    };
    assert_eq!(
        by_uid("777")["resultCount"].as_i64().unwrap() as usize,
        count_files(&e2e, "-result.json")
    );
    assert_eq!(
        by_uid("888")["resultCount"].as_i64().unwrap() as usize,
        count_files(&unit, "-result.json")
    );
    assert_eq!(
        by_uid("888")["stage"],
        "finished",
        "the plugin stops its job run"
    );
    assert!(!server.log().contains(TOKEN));
}

/// The plugin sends the errors and attachments of `*-globals.json` (a failing
/// mocha hook, a global attachment) to `/api/launch/error/bulk` and
/// `/api/launch/attachment`: they are kept with the launch's globals.
#[test]
fn allure3_plugin_globals_are_kept_on_the_launch() {
    if allure_cli().is_none() {
        return;
    }
    let server = TestServer::start();
    let api = server.api();
    let results = fixture("tests/fixtures/frameworks/allure-mocha/allure-results");
    allure_generate(&server, &results, &[]);
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1);
    let id = launches[0]["id"].as_i64().unwrap();
    let g = api.get(&format!("/api/launch/{id}/globals"));
    assert_eq!(g["errorCount"], 1, "{g}");
    assert_eq!(
        g["errors"][0]["message"],
        "\"before each\" hook: connect failed: database is not reachable"
    );
    assert_eq!(g["attachmentCount"], 1, "{g}");
    let a = &g["attachments"][0];
    assert!(a["contentUrl"].is_string(), "bytes stored: {a}");
    let expected = std::fs::read_to_string(
        results.join("c147d08b-e301-454c-abd4-a5087f879245-attachment.txt"),
    )
    .unwrap();
    let got = api
        .http
        .get(format!("{}{}", api.url, a["contentUrl"].as_str().unwrap()))
        .header("Authorization", format!("api-token {}", api.token))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(got, expected);
}
