//! Reruns into the same launch, end to end: a CI-led launch with failures
//! from two jobs (a GitHub job and a GitLab job, each running its own real
//! pytest suite with allure-pytest), both jobs configured with the `command`
//! integration; `launch rerun --failed` adds one job run per job to the same
//! launch, each planned with exactly its job's failed tests; the flaky tests
//! now pass, their failed attempts stay visible; the manual test is listed
//! as not rerunnable (and is run again by hand); the quality gate fails
//! before and holds after.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// A suite whose `*_flaky` tests pass once `flag` exists.
fn write_suite(dir: &Path, prefix: &str, flag: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("pytest.ini"), "[pytest]\n").unwrap();
    std::fs::write(
        dir.join(format!("test_{prefix}.py")),
        format!(
            "import os\n\n\ndef test_{prefix}_ok():\n    pass\n\n\n\
             def test_{prefix}_flaky():\n    assert os.path.exists({:?})\n",
            flag.display().to_string()
        ),
    )
    .unwrap();
}

fn run_suite(suite: &Path, results: &Path) {
    let out = std::process::Command::new("python3")
        .args(["-m", "pytest"])
        .arg(suite)
        .arg("--alluredir")
        .arg(results)
        .arg("-q")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("ALLURE_TESTPLAN_PATH")
        .output()
        .expect("python3 -m pytest (run scripts/tools/python.sh)");
    // Exit 1: some tests failed, as intended.
    assert_eq!(
        out.status.code(),
        Some(1),
        "pytest (is allure-pytest installed?)\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn configure(server: &TestServer, job: i64, suite: &Path, out: &Path) {
    server
        .cli()
        .env("RUNNER_TOKEN", TOKEN)
        .run(&[
            "job",
            "configure",
            &job.to_string(),
            "--can-run-tests",
            "true",
            "--integration",
            "command",
            "--command",
            &format!(
                "ONELAUNCH_BIN='{}' bash '{}'",
                bin().display(),
                fixture("tests/fixtures/server-led/run-job.sh").display()
            ),
            "--param",
            &format!("PYTEST_SUITE={}", suite.display()),
            "--param",
            &format!("OUT_DIR={}", out.display()),
            "--credential-env",
            "RUNNER_TOKEN",
        ])
        .ok();
}

fn case_id(api: &Api, name: &str) -> i64 {
    let cases = api.get("/api/testcase?projectId=1&size=100");
    cases["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no test case {name}: {cases}"))["id"]
        .as_i64()
        .unwrap()
}

/// What [`failing_launch`] made.
struct Failing {
    launch: i64,
    job_a: i64,
    job_b: i64,
    flaky_a: i64,
    flaky_b: i64,
    /// Where the jobs keep the plans they got.
    out: std::path::PathBuf,
    /// Once it exists, the flaky tests pass.
    flag: std::path::PathBuf,
}

/// A closed CI-led launch: job A (GitHub) and job B (GitLab) each fail one
/// test, a manual test is broken; both jobs run their suites through the
/// `command` integration. The gate `--max-failures 0` fails on it.
fn failing_launch(server: &TestServer) -> Failing {
    let api = server.api();
    let work = server.work_dir().to_path_buf();
    let flag = work.join("fixed");
    let (suite_a, suite_b) = (work.join("suite-a"), work.join("suite-b"));
    write_suite(&suite_a, "a", &flag);
    write_suite(&suite_b, "b", &flag);

    // One CI-led launch: job A (GitHub) and job B (GitLab) each fail one test.
    let (res_a, res_b) = (work.join("res-a"), work.join("res-b"));
    run_suite(&suite_a, &res_a);
    run_suite(&suite_b, &res_b);
    server
        .cli()
        .github("8001", "tests")
        .run(&[
            "upload",
            res_a.to_str().unwrap(),
            "--launch-name",
            "Nightly",
        ])
        .ok();
    let launch = api.launches(1)[0]["id"].as_i64().unwrap();
    server
        .cli()
        .gitlab("9001")
        .env("ALLURE_LAUNCH_ID", launch)
        .run(&["upload", res_b.to_str().unwrap()])
        .ok();
    // A manual test, reported broken (it needs a phone).
    server
        .cli()
        .run(&[
            "result",
            "manual",
            "--launch-id",
            &launch.to_string(),
            "--name",
            "Checkout on a phone",
            "--status",
            "broken",
        ])
        .ok();
    server
        .cli()
        .run(&["launch", "close", &launch.to_string()])
        .ok();
    // The gate: no test may fail.
    server
        .cli()
        .run(&["launch", "gate", &launch.to_string(), "--max-failures", "0"])
        .code(10);

    let jobs = api.get("/api/project/1/job");
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let job_of = |kind: &str| {
        jobs.iter()
            .find(|j| j["type"].as_str().unwrap_or_default().contains(kind))
            .unwrap_or_else(|| panic!("no {kind} job in {jobs:?}"))["id"]
            .as_i64()
            .unwrap()
    };
    let (job_a, job_b) = (job_of("github"), job_of("gitlab"));
    let out = work.join("job-out");
    configure(server, job_a, &suite_a, &out);
    configure(server, job_b, &suite_b, &out);
    let (flaky_a, flaky_b) = (case_id(&api, "test_a_flaky"), case_id(&api, "test_b_flaky"));
    Failing {
        launch,
        job_a,
        job_b,
        flaky_a,
        flaky_b,
        out,
        flag,
    }
}

#[test]
fn launch_rerun_failed_runs_each_jobs_failed_tests_again_in_the_same_launch() {
    let server = TestServer::start();
    let api = server.api();
    let Failing {
        launch,
        job_a,
        job_b,
        flaky_a,
        flaky_b,
        out,
        flag,
    } = failing_launch(&server);
    let l = launch.to_string();
    let gate = ["launch", "gate", &l, "--max-failures", "0"];

    // Fixed: the flaky tests pass from now on.
    std::fs::write(&flag, "").unwrap();
    let r = server
        .cli()
        .run(&["launch", "rerun", &l, "--failed", "-o", "json"])
        .ok();
    let dto: Value = serde_json::from_str(&r.stdout).expect("rerun JSON");
    assert_eq!(dto["launchId"], launch, "{dto}");
    assert_eq!(dto["reopened"], true, "{dto}");
    let runs = dto["jobRuns"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{dto}");
    for (job, case) in [(job_a, flaky_a), (job_b, flaky_b)] {
        let run = runs
            .iter()
            .find(|r| r["jobRun"]["job"]["id"] == job)
            .unwrap_or_else(|| panic!("no job run of job {job}: {dto}"));
        assert_eq!(run["testCaseIds"], serde_json::json!([case]), "{dto}");
        assert_eq!(run["jobRun"]["launchId"], launch, "{dto}");
    }
    let left = dto["notRerunnable"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{dto}");
    assert_eq!(left[0]["name"], "Checkout on a phone");
    assert!(
        left[0]["reason"].as_str().unwrap().contains("manual"),
        "{dto}"
    );

    // Both job runs finish in the same launch.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let runs = api.job_runs(launch);
        let rerun: Vec<&Value> = runs
            .iter()
            .filter(|r| {
                r["externalId"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("rerun-")
                    || r["name"].as_str().unwrap_or_default().contains("(rerun-")
            })
            .collect();
        if rerun.len() == 2 && rerun.iter().all(|r| r["stage"] == "finished") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rerun job runs did not finish: {runs:?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Each job got exactly its failed test in its plan.
    for run in runs {
        let id = run["jobRun"]["id"].as_i64().unwrap();
        let file: Value = serde_json::from_slice(
            &std::fs::read(out.join(format!("testplan-{id}.json"))).unwrap(),
        )
        .unwrap();
        let selectors: Vec<&str> = file["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["selector"].as_str().unwrap())
            .collect();
        assert_eq!(selectors.len(), 1, "{file}");
        assert!(selectors[0].ends_with("_flaky"), "{file}");
    }

    // The flaky tests end passed; their failed attempts stay visible.
    let results = api.results(launch);
    for name in ["test_a_flaky", "test_b_flaky"] {
        let mut statuses: Vec<&str> = results
            .iter()
            .filter(|r| r["name"] == name)
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        statuses.sort();
        assert_eq!(statuses, ["failed", "passed"], "{name}: {results:?}");
    }
    let stat = api.statistic(launch);
    assert_eq!(stat.get("failed"), None, "{stat:?}");
    assert_eq!(stat.get("passed"), Some(&4), "{stat:?}");
    let shown = api.get(&format!("/api/launch/{launch}"));
    assert_eq!(
        shown["reruns"],
        serde_json::json!({"rerun": 2, "changed": 2}),
        "{shown}"
    );
    let text = server.cli().run(&["launch", "show", &l]).ok();
    assert!(
        text.stdout
            .contains("Reruns: 2 tests rerun, 2 changed status"),
        "{}",
        text.stdout
    );
    // The manual test is run again by hand; then the gate holds.
    server.cli().run(&gate).code(10);
    server
        .cli()
        .run(&[
            "result",
            "manual",
            "--launch-id",
            &l,
            "--name",
            "Checkout on a phone",
            "--status",
            "passed",
        ])
        .ok();
    server.cli().run(&gate).code(0);

    // `testcase run --launch-id` adds scope to an open launch (the jobs are
    // proven again once this launch is closed).
    server.cli().run(&["launch", "close", &l]).ok();
    let other = server
        .cli()
        .run(&[
            "launch",
            "create",
            "--launch-name",
            "Extra",
            "--format",
            "ID",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let r = server
        .cli()
        .run(&[
            "testcase",
            "run",
            "--case",
            &flaky_a.to_string(),
            "--launch-id",
            &other,
        ])
        .ok();
    assert_eq!(r.stdout.trim(), other, "{}", r.all());
    assert_eq!(api.launches(1).len(), 2, "no new launch");
    let launch: i64 = other.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let runs = api.job_runs(launch);
        let added: Vec<&Value> = runs
            .iter()
            .filter(|r| {
                r["name"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(&format!("(plan-{launch}-1)"))
            })
            .collect();
        if added.len() == 1 && added[0]["stage"] == "finished" {
            assert_eq!(added[0]["job"]["id"], job_a, "{runs:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the added job run did not finish: {runs:?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn rerun_from_the_launch_page_in_headless_chromium() {
    if !crate::web_ui::browser_ready() {
        return;
    }
    let server = TestServer::start();
    let f = failing_launch(&server);
    std::fs::write(&f.flag, "").unwrap();
    let shots = repo().join("target/screenshots/rerun");
    let out = std::process::Command::new("node")
        .arg("rerun.mjs")
        .current_dir(repo().join("tests/browser"))
        .env("OL_URL", &server.url)
        .env("OL_TOKEN", TOKEN)
        .env("OL_LAUNCH_ID", f.launch.to_string())
        .env("OL_MANUAL_NAME", "Checkout on a phone")
        .env("OL_PICK_NAME", "test_a_ok")
        .env("OL_SCREENSHOTS", &shots)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser rerun test failed (screenshots in {}):\n{stdout}\n{stderr}\n--- server log ---\n{}",
        shots.display(),
        server.log()
    );
    // The selected test ran alone in its own job run.
    let runs = server.api().job_runs(f.launch);
    let last = runs
        .iter()
        .filter(|r| r["name"].as_str().unwrap_or_default().contains("(rerun-"))
        .max_by_key(|r| r["id"].as_i64().unwrap())
        .unwrap()
        .clone();
    assert_eq!(last["job"]["id"], f.job_a, "{runs:?}");
    let id = last["id"].as_i64().unwrap();
    let plan = server.api().get(&format!("/api/jobrun/{id}/plan"));
    assert_eq!(plan.as_array().unwrap().len(), 1, "{plan}");
    assert!(
        plan[0]["selector"].as_str().unwrap().ends_with("test_a_ok"),
        "{plan}"
    );
}
