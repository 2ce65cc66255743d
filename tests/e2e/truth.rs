//! The CLI and the CI identity tell the truth ("never a false green"): a
//! pipeline's own CI link, uploads of nothing, re-sent results, closed pipes,
//! what `launch show` and `launch close --wait` report.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::support::*;

fn write_result(dir: &Path, uuid: &str, status: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let body = json!({"uuid": uuid, "historyId": format!("h-{uuid}"), "name": format!("test {uuid}"),
        "fullName": format!("suite.test_{uuid}"), "status": status, "stage": "finished",
        "start": 1_700_000_000_000i64, "stop": 1_700_000_001_000i64});
    std::fs::write(dir.join(format!("{uuid}-result.json")), body.to_string()).unwrap();
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

/// The web UI page at `path`, logged in with the admin token.
fn ui_page(server: &TestServer, path: &str) -> String {
    UiSession::login(&server.url).get(path)
}

// ------------------------------------------------------------------ defect 9

/// A GitLab pipeline downstream of a GitHub workflow gets the upstream's
/// `job-run env` (ALLURE_LAUNCH_ID, ALLURE_JOB_RUN_URL, ...). Its own job run
/// links to its own pipeline, not to the upstream's onelaunch page; and when
/// it uploads into the upstream's job run (ALLURE_JOB_RUN_ID), its session
/// records its own CI and link, shown on the job-run page.
#[test]
fn a_downstream_pipeline_keeps_its_own_ci_identity_and_link() {
    let server = TestServer::start();
    let api = server.api();
    let github = server.cli().github("4401", "build");
    github.run(&["job-run", "start"]).ok();
    let vars = parse_env(
        &github
            .run(&["job-run", "env", "--format", "dotenv"])
            .ok()
            .stdout,
    );
    let upstream_run: i64 = vars["ALLURE_JOB_RUN_ID"].parse().unwrap();
    assert!(
        vars["ALLURE_JOB_RUN_URL"].contains(&format!("/jobrun/{upstream_run}")),
        "{vars:?}"
    );
    let mut shared: Vec<(&str, &str)> = vars
        .iter()
        .filter(|(k, _)| k.as_str() != "ALLURE_ENDPOINT" && k.as_str() != "ALLURE_PROJECT_ID")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();

    // The downstream GitLab pipeline joins the launch with a job run of its own.
    shared.retain(|(k, _)| *k != "ALLURE_JOB_RUN_ID");
    let gitlab = server.cli().gitlab("8801").envs(&shared);
    gitlab.run(&["job-run", "start"]).ok();
    let launch: i64 = vars["ALLURE_LAUNCH_ID"].parse().unwrap();
    let runs = api.job_runs(launch);
    assert_eq!(runs.len(), 2, "{runs:?}");
    let own = runs.iter().find(|r| r["job"]["type"] == "gitlab").unwrap();
    assert_eq!(
        own["url"], "https://gitlab.com/acme/api-tests/-/pipelines/1",
        "the GitLab job run links to its pipeline: {own}"
    );
    let up = runs.iter().find(|r| r["job"]["type"] == "github").unwrap();
    assert_eq!(up["url"], "https://github.com/acme/shop/actions/runs/4401");

    // Another GitLab pipeline uploads straight into the GitHub job run.
    let dir = tempfile::tempdir().unwrap();
    write_result(dir.path(), "cross-1", "passed");
    server
        .cli()
        .gitlab("8802")
        .envs(&[(
            "CI_PIPELINE_URL",
            "https://gitlab.com/acme/api-tests/-/pipelines/8802",
        )])
        .envs(
            &vars
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        )
        .run(&["upload", dir.path().to_str().unwrap()])
        .ok();
    let up = api.get(&format!("/api/jobrun/{upstream_run}"));
    assert_eq!(up["resultCount"], 1, "the results joined the job run: {up}");
    assert_eq!(
        up["url"], "https://github.com/acme/shop/actions/runs/4401",
        "the job run keeps its own link"
    );
    let page = ui_page(&server, &format!("/jobrun/{upstream_run}"));
    let uploads = &page[page.find("id=\"uploads\"").expect("an Uploads section")..];
    let uploads = &uploads[..uploads.find("</section>").unwrap()];
    assert!(uploads.contains("gitlab"), "{uploads}");
    assert!(
        uploads.contains("https://gitlab.com/acme/api-tests/-/pipelines/8802"),
        "{uploads}"
    );
    assert!(!uploads.contains("/jobrun/"), "{uploads}");
}

// ------------------------------------------------------------------ defect 10

#[test]
fn an_upload_of_nothing_fails_and_creates_nothing() {
    let server = TestServer::start();
    let api = server.api();
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("notes.txt"), "not a result").unwrap();
    let shown = empty.path().to_str().unwrap();

    // Outside CI, and in CI (where the upload would create its job run).
    for cli in [server.cli(), server.cli().github("4501", "tests")] {
        let r = cli.run(&["upload", shown]).code(9);
        assert!(
            r.stderr.contains(shown),
            "names the directory: {}",
            r.stderr
        );
        assert!(r.stderr.contains("-result.json"), "{}", r.stderr);
        let pattern = format!("{shown}/*-result.json");
        let r = cli.run(&["upload", &pattern]).code(9);
        assert!(
            r.stderr.contains(&format!("no file matches {pattern}")),
            "names the pattern: {}",
            r.stderr
        );
        // --allow-empty: a success, and still nothing is created.
        let r = cli.run(&["upload", "--allow-empty", shown]).ok();
        assert!(r.stdout.contains("nothing was uploaded"), "{}", r.stdout);
    }
    assert!(api.launches(1).is_empty(), "{:?}", api.launches(1));
}

#[test]
fn a_resent_upload_says_what_was_new_and_what_was_already_there() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    write_result(dir.path(), "n-1", "passed");
    write_result(dir.path(), "n-2", "failed");
    let ci = server.cli().github("4601", "tests");
    let first = ci.run(&["upload", dir.path().to_str().unwrap()]).ok();
    assert!(
        first
            .stdout
            .contains("Uploaded 2 new results, 0 already present"),
        "{}",
        first.stdout
    );
    write_result(dir.path(), "n-3", "passed");
    let again = ci
        .run(&["upload", dir.path().to_str().unwrap(), "-o", "json"])
        .ok();
    let v = json_of(&again);
    assert_eq!(
        (v["new"].as_i64(), v["alreadyPresent"].as_i64()),
        (Some(1), Some(2)),
        "{v}"
    );
    let text = ci.run(&["upload", dir.path().to_str().unwrap()]).ok();
    assert!(
        text.stdout
            .contains("Uploaded 0 new results, 3 already present"),
        "{}",
        text.stdout
    );
}

// ------------------------------------------------------------------ defect 11

#[test]
fn a_closed_pipe_ends_printing_commands_normally() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    write_result(dir.path(), "p-1", "passed");
    server
        .cli()
        .github("4701", "tests")
        .run(&["upload", dir.path().to_str().unwrap()])
        .ok();
    let launch = server.api().launches(1)[0]["id"].as_i64().unwrap();
    // A reader that is gone before anything is written (`| head -0`), so the
    // first write meets a closed pipe every time.
    for args in [
        vec!["launch".to_string(), "show".into(), launch.to_string()],
        vec!["launch".into(), "list".into()],
        vec![
            "launch".into(),
            "show".into(),
            launch.to_string(),
            "-o".into(),
            "json".into(),
        ],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd: Command = server.cli().command(&args);
        let out = cmd
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Through a shell, as people write it.
    let r = server.cli().bash(&format!(
        "set -o pipefail; onelaunch launch show {launch} | head -1"
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with(&format!("Launch [{launch}]")),
        "{}",
        r.stdout
    );
}

#[test]
fn close_wait_on_a_closed_launch_reports_what_launch_show_reports() {
    let server = TestServer::start();
    let c = server.cli().github("4801", "tests");
    let started = json_of(
        &c.run(&["job-run", "start", "--expect", "2", "-o", "json"])
            .ok(),
    );
    let launch = started["launchId"].as_i64().unwrap().to_string();
    c.run(&["job-run", "stop"]).ok();
    server.cli().run(&["launch", "close", &launch]).ok();
    let show = json_of(
        &server
            .cli()
            .run(&["launch", "show", &launch, "-o", "json"])
            .ok(),
    );
    assert_eq!(show["participants"]["missing"], 1, "{show}");
    let closed = json_of(
        &server
            .cli()
            .run(&[
                "launch",
                "close",
                &launch,
                "--wait",
                "--timeout",
                "5s",
                "-o",
                "json",
            ])
            .ok(),
    );
    assert_eq!(
        closed["missing"], show["participants"]["missing"],
        "{closed}"
    );
    assert_eq!(closed["unfinished"], json!([]), "{closed}");
    let text = server
        .cli()
        .run(&["launch", "close", &launch, "--wait", "--timeout", "5s"])
        .ok();
    assert!(
        text.stdout.contains("1 expected job run never started"),
        "{}",
        text.stdout
    );
}

#[test]
fn launch_show_names_issues_and_environment() {
    let server = TestServer::start();
    let api = server.api();
    let l = api.post(
        "/api/launch",
        &json!({"name": "Release 3", "projectId": 1,
            "issues": [{"name": "SHOP-17", "url": "https://tracker.example.com/browse/SHOP-17"}, "JIRA-9"]}),
    );
    let id = l["id"].as_i64().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    write_result(dir.path(), "e-1", "passed");
    std::fs::write(
        dir.path().join("environment.properties"),
        "os=linux\nbrowser=firefox\n",
    )
    .unwrap();
    server
        .cli()
        .env("ALLURE_LAUNCH_ID", &id)
        .run(&["upload", dir.path().to_str().unwrap()])
        .ok();
    let out = server.cli().run(&["launch", "show", &id]).ok().stdout;
    assert!(
        out.contains("Issues: SHOP-17 (https://tracker.example.com/browse/SHOP-17), JIRA-9"),
        "{out}"
    );
    assert!(out.contains("  browser = firefox"), "{out}");
    assert!(out.contains("  os = linux"), "{out}");
    let js = json_of(
        &server
            .cli()
            .run(&["launch", "show", &id, "-o", "json"])
            .ok(),
    );
    assert!(
        js["launch"]["environment"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": "os", "value": "linux"})),
        "{js}"
    );
}

/// The GitHub action's `allow-empty` input, run as its composite step would:
/// off by default (the step fails, exit 9), on passes `--allow-empty`; either
/// way nothing is created on the server.
#[test]
fn the_github_action_fails_an_empty_upload_unless_allow_empty() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("results")).unwrap();
    let run = |allow: &str| {
        let mut c = Command::new("bash");
        c.arg(repo().join("plugins/github/onelaunch-action.sh"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("no-config"))
            .env("GITHUB_OUTPUT", dir.path().join("output"))
            .env("GITHUB_STEP_SUMMARY", dir.path().join("summary"))
            .env("RUNNER_TEMP", dir.path())
            .envs([
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REPOSITORY", "acme/shop"),
                ("GITHUB_WORKFLOW", "CI"),
                ("GITHUB_RUN_ID", "4901"),
                ("GITHUB_RUN_NUMBER", "1"),
                ("GITHUB_JOB", "tests"),
                ("GITHUB_SERVER_URL", "https://github.com"),
                ("ONELAUNCH_IN_COMMAND", "upload"),
                ("ONELAUNCH_IN_RESULTS", "results"),
                ("ONELAUNCH_IN_ENDPOINT", server.url.as_str()),
                ("ONELAUNCH_IN_TOKEN", server.api().token.as_str()),
                ("ONELAUNCH_IN_BINARY", bin().to_str().unwrap()),
                ("ONELAUNCH_IN_ALLOW_EMPTY", allow),
            ]);
        Run::from(c.output().expect("bash"))
    };
    let r = run("false");
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("exit code 9"), "{}", r.all());
    assert!(r.all().contains("no test results"), "{}", r.all());
    let r = run("true").ok();
    assert!(
        r.all().contains("nothing was uploaded (--allow-empty)"),
        "{}",
        r.all()
    );
    assert!(server.api().launches(1).is_empty());
}
