//! Errors and attachments outside tests (Allure 3 `*-globals.json`), from a
//! real allure-mocha run (`tests/fixtures/frameworks/allure-mocha/`: a failing
//! `beforeEach` hook and an `allure.globalAttachment`), uploaded with the CLI
//! from a CI job: the counts per status are mocha's own, and the hook's error
//! and the attachment's content are on the launch and its job run in the API,
//! in `launch show` (text and JSON, counted as a problem) and on the launch
//! and job-run pages.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::*;

const HOOK_ERROR: &str = "\"before each\" hook: connect failed: database is not reachable";
const ATTACHMENT: &str = "server started on port 8080";

fn expected() -> BTreeMap<String, i64> {
    std::fs::read_to_string(fixture(
        "tests/fixtures/frameworks/allure-mocha/expected.txt",
    ))
    .unwrap()
    .lines()
    .filter_map(|l| l.split_once('='))
    .map(|(k, v)| (k.to_string(), v.trim().parse().unwrap()))
    .collect()
}

/// A UI page, after logging in through the form with `token`.
fn ui_page(url: &str, token: &str, path: &str) -> String {
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookies = |r: &reqwest::blocking::Response| -> Vec<String> {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
            .collect()
    };
    let login = http.get(format!("{url}/login")).send().unwrap();
    let jar = cookies(&login);
    let csrf = jar
        .iter()
        .find_map(|c| c.strip_prefix("ol_login="))
        .expect("login cookie")
        .to_string();
    let answer = http
        .post(format!("{url}/login"))
        .header("Cookie", jar.join("; "))
        .form(&[("token", token), ("csrf", &csrf), ("next", "/launches")])
        .send()
        .unwrap();
    let session = cookies(&answer);
    assert!(!session.is_empty(), "login failed: {}", answer.status());
    let page = http
        .get(format!("{url}{path}"))
        .header("Cookie", session.join("; "))
        .send()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200, "{path}");
    page.text().unwrap()
}

#[test]
fn a_failing_hook_and_a_global_attachment_of_allure_mocha_reach_the_launch() {
    let server = TestServer::start();
    let api = server.api();
    let results = server.work_dir().join("allure-results");
    copy_dir(
        &fixture("tests/fixtures/frameworks/allure-mocha/allure-results"),
        &results,
    );
    let cli = server.cli().github("9101", "mocha");
    let up = cli
        .run(&[
            "upload",
            "--launch-name",
            "mocha globals",
            results.to_str().unwrap(),
        ])
        .ok();
    assert!(
        up.stdout
            .contains("Problems outside tests: 1 errors, 1 attachments"),
        "{}",
        up.all()
    );
    let launch = api
        .launches(1)
        .into_iter()
        .find(|l| l["name"] == "mocha globals")
        .unwrap_or_else(|| panic!("no launch\n{}", up.all()))["id"]
        .as_i64()
        .unwrap();

    // mocha's own counts.
    let want = expected();
    let mut counts = want.clone();
    let attempts = counts.remove("attempts").unwrap() as usize;
    let global_errors = counts.remove("global_errors").unwrap();
    counts.retain(|_, n| *n > 0);
    assert_eq!(api.statistic(launch), counts);
    assert_eq!(api.results(launch).len(), attempts);

    // The API: on the launch and on its job run.
    let runs = api.job_runs(launch);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = runs[0]["id"].as_i64().unwrap();
    for path in [
        format!("/api/launch/{launch}/globals"),
        format!("/api/jobrun/{run}/globals"),
    ] {
        let g = api.get(&path);
        assert_eq!(g["errorCount"], global_errors, "{path}: {g}");
        assert_eq!(g["errors"][0]["message"], HOOK_ERROR, "{path}: {g}");
        assert_eq!(g["errors"][0]["jobRunId"], run, "{path}: {g}");
        assert!(g["errors"][0]["trace"]
            .as_str()
            .unwrap()
            .contains("sample.spec.js"));
        assert_eq!(g["attachmentCount"], 1, "{path}: {g}");
        let a = &g["attachments"][0];
        assert_eq!(a["name"], "server.log", "{g}");
        assert_eq!(a["contentType"], "text/plain", "{g}");
        let content = api
            .http
            .get(format!(
                "{}{}",
                server.url,
                a["contentUrl"].as_str().unwrap()
            ))
            .header("Authorization", format!("api-token {}", api.token))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(content, format!("{ATTACHMENT}\n"));
    }

    // Sending the same directory again adds nothing.
    cli.run(&[
        "upload",
        "--launch-name",
        "mocha globals",
        results.to_str().unwrap(),
    ])
    .ok();
    let g = api.get(&format!("/api/launch/{launch}/globals"));
    assert_eq!(g["errorCount"], global_errors, "{g}");
    assert_eq!(g["attachmentCount"], 1, "{g}");

    // launch show: a section of its own, counted as a problem.
    let show = server
        .cli()
        .run(&["launch", "show", &launch.to_string()])
        .ok();
    assert!(
        show.stdout
            .contains("Problems outside tests: 1 error, 1 attachment"),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains(HOOK_ERROR), "{}", show.stdout);
    assert!(show.stdout.contains(ATTACHMENT), "{}", show.stdout);
    let failed = counts.get("failed").unwrap_or(&0) + counts.get("broken").unwrap_or(&0);
    assert!(
        show.stdout.contains(&format!(
            "Problems: {} ({failed} failed or broken tests, 0 run failures, 1 error outside tests)",
            failed + global_errors
        )),
        "{}",
        show.stdout
    );
    let json = server
        .cli()
        .run(&["launch", "show", &launch.to_string(), "-o", "json"])
        .ok();
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["globals"]["errors"][0]["message"], HOOK_ERROR, "{v}");
    assert_eq!(v["globals"]["attachments"][0]["name"], "server.log");
    assert_eq!(v["problems"]["errorsOutsideTests"], global_errors, "{v}");
    assert_eq!(v["problems"]["total"], failed + global_errors, "{v}");

    // The UI: the launch page and the job-run page.
    for path in [format!("/launch/{launch}"), format!("/jobrun/{run}")] {
        let html = ui_page(&server.url, &api.token, &path);
        assert!(html.contains("Problems outside tests"), "{path}");
        assert!(
            html.contains(
                "&quot;before each&quot; hook: connect failed: database is not reachable"
            ),
            "{path}: {html}"
        );
        assert!(html.contains(ATTACHMENT), "{path}");
    }
}

/// The server unreachable: the spool keeps the globals files and the
/// attachments they name; `upload --resume` delivers them.
#[test]
fn globals_wait_in_the_spool_until_the_server_is_back() {
    let work = tempfile::tempdir().unwrap();
    let results = work.path().join("allure-results");
    copy_dir(
        &fixture("tests/fixtures/frameworks/allure-mocha/allure-results"),
        &results,
    );
    let spool = work.path().join("kept");
    let job = |cli: Cli| {
        cli.envs(&[
            ("ALLURE_CI_TYPE", "shell"),
            ("ALLURE_JOB_UID", "globals"),
            ("ALLURE_JOB_RUN_UID", "globals-1"),
        ])
    };
    job(Cli::new("http://127.0.0.1:1", TOKEN))
        .run(&[
            "upload",
            results.to_str().unwrap(),
            "--spool",
            spool.to_str().unwrap(),
        ])
        .code(8);
    let kept = spool.join("files/0");
    assert_eq!(count_files(&kept, "-globals.json"), 2);
    for entry in std::fs::read_dir(&kept).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with("-globals.json") {
            let g: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            for a in g["attachments"].as_array().unwrap() {
                let source = a["source"].as_str().unwrap();
                assert!(kept.join(source).is_file(), "{source} kept");
            }
        }
    }

    let server = TestServer::start();
    job(server.cli())
        .run(&["upload", "--resume", "--spool", spool.to_str().unwrap()])
        .ok();
    let api = server.api();
    let launch = api.launches(1)[0]["id"].as_i64().unwrap();
    let g = api.get(&format!("/api/launch/{launch}/globals"));
    assert_eq!(g["errors"][0]["message"], HOOK_ERROR, "{g}");
    assert_eq!(g["attachments"][0]["contentLength"], 28, "{g}");
}
