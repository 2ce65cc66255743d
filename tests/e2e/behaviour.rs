//! CLI behaviour: idempotent re-sends, closed launches, bad input next to good
//! input, project isolation, watch.

use serde_json::json;

use crate::support::*;

#[test]
fn resending_an_upload_adds_nothing() {
    let server = TestServer::start();
    let api = server.api();
    let ci = server.cli().github("100", "tests");
    let dir = fixture("tests/fixtures/allure-pytest");
    ci.run(&["upload", dir.to_str().unwrap()]).ok();
    let launch = api.launches(1)[0]["id"].as_i64().unwrap();
    let first = api.results(launch);
    let stat = api.statistic(launch);
    // The same CI job re-sends everything (e.g. a retried step).
    ci.run(&["upload", dir.to_str().unwrap()]).ok();
    let second = api.results(launch);
    assert_eq!(first.len(), count_files(&dir, "-result.json"));
    assert_eq!(second.len(), first.len(), "a re-sent upload adds nothing");
    let ids = |v: &Vec<serde_json::Value>| {
        v.iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ids(&second));
    assert_eq!(api.statistic(launch), stat);
    assert_eq!(api.launches(1).len(), 1);
}

#[test]
fn upload_into_closed_launch_is_refused_unless_reopened() {
    let server = TestServer::start();
    let api = server.api();
    let cli = server.cli();
    let id = cli
        .run(&[
            "launch",
            "create",
            "--launch-name",
            "Closed one",
            "--format",
            "ID",
        ])
        .ok()
        .stdout
        .trim()
        .parse::<i64>()
        .unwrap();
    cli.run(&["launch", "close", &id.to_string()]).ok();
    // Closing twice is fine.
    cli.run(&["launch", "close", &id.to_string()]).ok();
    let dir = fixture("examples/pipelines/github-unit/allure-results");
    let r = cli
        .clone()
        .env("ALLURE_LAUNCH_ID", id)
        .run(&["upload", dir.to_str().unwrap()])
        .code(6);
    assert!(r.stderr.contains("closed"), "{}", r.stderr);
    assert!(api.results(id).is_empty());
    // So is a CI job joining it by id (its job-run start is refused).
    let ci = cli.clone().gitlab("7").env("ALLURE_LAUNCH_ID", id);
    let r = ci.run(&["upload", dir.to_str().unwrap()]).code(6);
    assert!(r.stderr.contains("--reopen-closed-launch"), "{}", r.stderr);
    assert!(api.results(id).is_empty());

    let r = cli
        .clone()
        .env("ALLURE_LAUNCH_ID", id)
        .run(&["upload", "--reopen-closed-launch", dir.to_str().unwrap()])
        .ok();
    assert!(r.all().contains("reopened"), "{}", r.all());
    assert_eq!(api.results(id).len(), count_files(&dir, "-result.json"));
    assert_eq!(api.get(&format!("/api/launch/{id}"))["closed"], false);
    // The CI job reopens it too when told to, and says so.
    cli.run(&["launch", "close", &id.to_string()]).ok();
    let r = ci
        .run(&["upload", "--reopen-closed-launch", dir.to_str().unwrap()])
        .ok();
    assert!(
        r.all().contains("Launch [") && r.all().contains("reopened"),
        "{}",
        r.all()
    );
    assert_eq!(api.get(&format!("/api/launch/{id}"))["closed"], false);

    // The API answers 409 with a message saying so.
    cli.run(&["launch", "close", &id.to_string()]).ok();
    let (status, body) = api.post_raw("/api/upload/session?manual=true", &json!({"launchId": id}));
    assert_eq!(status, 409);
    assert!(body["message"].as_str().unwrap().contains("closed"));
}

#[test]
fn malformed_files_are_named_and_good_ones_still_arrive() {
    let server = TestServer::start();
    let api = server.api();
    let dir = server.work_dir().join("mixed");
    copy_dir(
        &fixture("examples/pipelines/github-unit/allure-results"),
        &dir,
    );
    let good = count_files(&dir, "-result.json");
    std::fs::write(
        dir.join("broken-result.json"),
        "{\"uuid\": \"x\", \"name\": ",
    )
    .unwrap();
    std::fs::write(dir.join("empty-result.json"), "").unwrap();
    std::fs::write(dir.join("latin1-result.json"), b"{\"uuid\":\"\xff\xfe\"}").unwrap();
    std::fs::write(
        dir.join("wrongtype-result.json"),
        r#"{"uuid":"w1","name":"n","start":"yesterday"}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("escape-result.json"),
        r#"{"uuid":"esc-1","name":"escape","status":"passed","attachments":[{"name":"pw","source":"../../../etc/passwd","type":"text/plain"}]}"#,
    )
    .unwrap();
    let r = server
        .cli()
        .run(&["upload", "--launch-name", "Mixed", dir.to_str().unwrap()])
        .code(3);
    for f in [
        "broken-result.json",
        "empty-result.json",
        "latin1-result.json",
        "wrongtype-result.json",
        "../../../etc/passwd",
    ] {
        assert!(
            r.stderr.contains(f),
            "stderr does not name {f}:\n{}",
            r.stderr
        );
    }
    let launch = api.launches(1)[0]["id"].as_i64().unwrap();
    let results = api.results(launch);
    // Every good result arrived, including the one whose attachment was refused.
    assert_eq!(results.len(), good + 1);
    assert!(results.iter().any(|r| r["uuid"] == "esc-1"));
}

#[test]
fn projects_are_isolated_and_tokens_are_required() {
    let server = TestServer::start();
    let admin = server.api();
    let cli = server.cli();
    let launch = cli
        .run(&[
            "launch",
            "create",
            "--launch-name",
            "Project one",
            "--format",
            "ID",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();

    let p = cli.run(&["project", "create", "Team B", "-o", "json"]).ok();
    let project: serde_json::Value = serde_json::from_str(&p.stdout).unwrap();
    let pid = project["id"].as_i64().unwrap();
    let token = cli
        .run(&["project", "token", &pid.to_string()])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(!token.is_empty());
    let b = admin.with_token(&token);

    // Another project's launch is invisible: 404, not 403.
    assert_eq!(b.get_raw(&format!("/api/launch/{launch}")).0, 404);
    assert_eq!(b.get_raw(&format!("/api/launch/{launch}/statistic")).0, 404);
    assert_eq!(b.get_raw("/api/launch?projectId=1").0, 404);
    assert_eq!(
        b.post_raw(
            "/api/upload/session?manual=true",
            &json!({"launchId": launch.parse::<i64>().unwrap()})
        )
        .0,
        404
    );
    // Its own project works.
    let own = b.post(
        "/api/launch",
        &json!({"name": "B launch", "projectId": pid.to_string()}),
    );
    assert_eq!(b.get_raw(&format!("/api/launch/{}", own["id"])).0, 200);
    // A project token cannot create projects.
    assert_eq!(b.post_raw("/api/project", &json!({"name": "x"})).0, 403);

    // No token or a wrong token: 401.
    let r = reqwest::blocking::get(format!("{}/api/launch/{launch}", server.url)).unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        admin
            .with_token("wrong")
            .get_raw(&format!("/api/launch/{launch}"))
            .0,
        401
    );

    // The CLI with the project token gets a clear not-found exit code.
    let r = server
        .cli()
        .env("ALLURE_TOKEN", &token)
        .env("ALLURE_PROJECT_ID", pid)
        .run(&["launch", "show", &launch])
        .code(7);
    assert!(!r.all().contains(&token));
    let r = server
        .cli()
        .env("ALLURE_TOKEN", "wrong")
        .run(&["launch", "list"])
        .code(5);
    assert!(
        !r.all().contains("wrong"),
        "the token is never echoed: {}",
        r.all()
    );
}

#[test]
fn watch_uploads_while_the_command_runs_and_keeps_its_exit_code() {
    let server = TestServer::start();
    let api = server.api();
    let results = server.work_dir().join("watch-results");
    let src = fixture("examples/pipelines/github-unit/allure-results");
    let script = format!(
        "test -z \"${{ALLURE_TOKEN:-}}\" || exit 9; test -n \"$ALLURE_LAUNCH_ID\" || exit 8; cp '{src}'/*-result.json '{dst}'/ && sleep 2 && cp '{src}'/*.txt '{src}'/*-container.json '{dst}'/ && exit 3",
        src = src.display(),
        dst = results.display()
    );
    let r = server
        .cli()
        .run(&[
            "watch",
            "--results",
            results.to_str().unwrap(),
            "--interval",
            "0.2",
            "--launch-name",
            "Watched",
            "--",
            "bash",
            "-c",
            &script,
        ])
        .code(3);
    assert!(r.stdout.contains("Uploaded"), "{}", r.stdout);
    let launch = api.launches(1)[0]["id"].as_i64().unwrap();
    let rs = api.results(launch);
    assert_eq!(rs.len(), count_files(&src, "-result.json"));
    assert!(rs
        .iter()
        .any(|r| r["attachmentCount"].as_i64().unwrap() > 0));
    assert!(
        rs.iter().any(|r| r["fixtureCount"].as_i64().unwrap() > 0),
        "fixtures from a late container arrive at the end"
    );
}

#[test]
fn unreachable_server_has_its_own_exit_code() {
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let r = Cli::new(&format!("http://127.0.0.1:{port}"), TOKEN)
        .run(&["launch", "list", "--http-timeout", "2"])
        .code(4);
    assert!(r.stderr.contains("127.0.0.1"), "{}", r.stderr);
}

#[test]
fn quick_start_demo_reports_three_pipelines_into_one_launch() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg(repo().join("scripts/demo"))
        .arg("--exit")
        .env("ONELAUNCH_BIN", bin())
        .env("ONELAUNCH_DEMO_DATA", dir.path())
        .env("ONELAUNCH_DEMO_LISTEN", "127.0.0.1:0")
        .env_remove("ALLURE_ENDPOINT")
        .env_remove("ALLURE_TOKEN")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI")
        .env_remove("JENKINS_URL")
        .output()
        .unwrap();
    let r = Run::from(out).ok();
    assert!(
        r.stdout
            .contains("Results: 15 (passed 11, failed 2, broken 1, skipped 1)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Job runs: 2"), "{}", r.stdout);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("Shared launch: http://127.0.0.1:"))
        .expect("prints the launch URL");
    assert!(line.ends_with("/launch/1"), "{line}");
    let token = std::fs::read_to_string(dir.path().join("demo-token")).unwrap();
    assert!(!r.all().contains(token.trim()));
}

#[test]
fn empty_allure_variables_count_as_unset() {
    let server = TestServer::start();
    let api = server.api();
    let dir = fixture("examples/pipelines/github-e2e/allure-results");
    // CI systems often define unused variables as empty strings.
    server
        .cli()
        .envs(&[
            ("ALLURE_JOB_RUN_ID", ""),
            ("ALLURE_LAUNCH_ID", ""),
            ("ALLURE_PROJECT_ID", ""),
        ])
        .run(&[
            "upload",
            "--launch-name",
            "Empty vars",
            dir.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(api.launches(1).len(), 1);
}
