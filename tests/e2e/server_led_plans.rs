//! A server-led launch honours and keeps its planned scope, with real Allure
//! adapters reading the job run's `testplan.json`: allure-pytest, and the
//! allure-js adapter allure-mocha (pinned in tests/compat/allure-mocha).
//!
//! The suites are written here: `plain` has no `ALLURE_ID`, `with_id` has
//! 9001, `removed` (9002) is learned and then deleted from the suite, and
//! `impostor` carries as its `ALLURE_ID` the internal test-case id of `plain`.
//! A run of the three learned cases must run exactly `plain` and `with_id`
//! (a plan giving `plain` an `id` would select `impostor` too), and the job
//! run, which reports two of three planned tests, is not `passed` and names
//! `removed` as missing: in the API, in `launch show`, in the job run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// Test-case ids by name, and the one job CI-led uploads created.
fn learned(api: &Api) -> (Vec<(String, i64)>, i64) {
    let cases = api.get("/api/testcase?projectId=1&size=100")["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["id"].as_i64().unwrap(),
            )
        })
        .collect();
    let jobs = api.get("/api/project/1/job");
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    (cases, jobs[0]["id"].as_i64().unwrap())
}

fn id_of(cases: &[(String, i64)], name: &str) -> i64 {
    cases
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no test case {name} in {cases:?}"))
        .1
}

/// An adapter: how its suite is written, run locally, and run by the job.
struct Adapter {
    /// Test names as the adapter reports them: plain, with_id, removed, impostor.
    names: [&'static str; 4],
    /// Writes the suite; `impostor` is the ALLURE_ID of the impostor test,
    /// `None` before the cases were learned (and with `removed` still there).
    write: fn(&Path, Option<i64>),
    /// Runs the suite into an allure-results directory (no test plan).
    run: fn(&Path, &Path),
    /// `configure` arguments of the job's `command` integration.
    job: fn(&Path, &Path) -> Vec<String>,
}

fn pytest_write(dir: &Path, impostor: Option<i64>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("pytest.ini"), "[pytest]\n").unwrap();
    let mut src = String::from(
        "import allure\n\n\ndef test_plain():\n    pass\n\n\n\
         @allure.id(\"9001\")\ndef test_with_id():\n    pass\n",
    );
    match impostor {
        None => src.push_str("\n\n@allure.id(\"9002\")\ndef test_removed():\n    pass\n"),
        Some(id) => src.push_str(&format!(
            "\n\n@allure.id(\"{id}\")\ndef test_impostor():\n    pass\n"
        )),
    }
    std::fs::write(dir.join("test_plans.py"), src).unwrap();
}

fn pytest_run(suite: &Path, results: &Path) {
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
    assert!(
        out.status.success(),
        "pytest (is allure-pytest installed? scripts/tools/python.sh)\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pytest_job(suite: &Path, out: &Path) -> Vec<String> {
    vec![
        "--command".into(),
        format!(
            "ONELAUNCH_BIN='{}' bash '{}'",
            bin().display(),
            fixture("tests/fixtures/server-led/run-job.sh").display()
        ),
        "--param".into(),
        format!("PYTEST_SUITE={}", suite.display()),
        "--param".into(),
        format!("OUT_DIR={}", out.display()),
    ]
}

const PYTEST: Adapter = Adapter {
    names: [
        "test_plain",
        "test_with_id",
        "test_removed",
        "test_impostor",
    ],
    write: pytest_write,
    run: pytest_run,
    job: pytest_job,
};

fn mocha_home() -> PathBuf {
    let home = repo().join("tests/compat/allure-mocha");
    assert!(
        home.join("node_modules/allure-mocha").is_dir(),
        "allure-mocha is not installed: run scripts/tools/allure-mocha.sh"
    );
    home
}

fn mocha_write(dir: &Path, impostor: Option<i64>) {
    std::fs::create_dir_all(dir).unwrap();
    let last = match impostor {
        None => "  it(\"removed @allure.id=9002\", () => {});\n".to_string(),
        Some(id) => format!("  it(\"impostor @allure.id={id}\", () => {{}});\n"),
    };
    std::fs::write(
        dir.join("plans.spec.js"),
        format!(
            "describe(\"shop\", () => {{\n  it(\"plain\", () => {{}});\n  \
             it(\"with id @allure.id=9001\", () => {{}});\n{last}}});\n"
        ),
    )
    .unwrap();
}

fn mocha_run(suite: &Path, results: &Path) {
    let home = mocha_home();
    let out = std::process::Command::new("node")
        .arg(home.join("node_modules/mocha/bin/mocha.js"))
        .args(["--reporter", "allure-mocha", "--reporter-option"])
        .arg(format!("resultsDir={}", results.display()))
        .arg("*.spec.js")
        .current_dir(suite)
        .env("NODE_PATH", home.join("node_modules"))
        .env_remove("ALLURE_TESTPLAN_PATH")
        .output()
        .expect("node (run scripts/tools/allure-mocha.sh)");
    assert!(
        out.status.success(),
        "mocha\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mocha_job(suite: &Path, out: &Path) -> Vec<String> {
    vec![
        "--command".into(),
        format!(
            "ONELAUNCH_BIN='{}' bash '{}'",
            bin().display(),
            fixture("tests/fixtures/server-led/run-mocha-job.sh").display()
        ),
        "--param".into(),
        format!("MOCHA_SUITE={}", suite.display()),
        "--param".into(),
        format!("MOCHA_HOME={}", mocha_home().display()),
        "--param".into(),
        format!("OUT_DIR={}", out.display()),
    ]
}

const MOCHA: Adapter = Adapter {
    names: ["plain", "with id", "removed", "impostor"],
    write: mocha_write,
    run: mocha_run,
    job: mocha_job,
};

fn planned_round_trip(adapter: &Adapter) {
    let server = TestServer::start();
    let api = server.api();
    let [plain, with_id, removed, impostor] = adapter.names;
    let suite = server.work_dir().join("suite");
    let out = server.work_dir().join("job-out");

    // CI-led history: the three tests are learned; the launch is closed.
    (adapter.write)(&suite, None);
    let results = server.work_dir().join("learn");
    (adapter.run)(&suite, &results);
    server
        .cli()
        .github("7001", "tests")
        .run(&["upload", results.to_str().unwrap(), "--launch-name", "CI"])
        .ok();
    let learn_launch = api.launches(1)[0]["id"].as_i64().unwrap();
    server
        .cli()
        .run(&["launch", "close", &learn_launch.to_string()])
        .ok();
    let (cases, job) = learned(&api);
    assert_eq!(cases.len(), 3, "{cases:?}");
    let (plain_id, with_id_id, removed_id) = (
        id_of(&cases, plain),
        id_of(&cases, with_id),
        id_of(&cases, removed),
    );

    // The suite changes: `removed` is gone, `impostor` carries plain's id.
    std::fs::remove_dir_all(&suite).unwrap();
    (adapter.write)(&suite, Some(plain_id));

    let mut configure: Vec<String> = [
        "job",
        "configure",
        &job.to_string(),
        "--can-run-tests",
        "true",
        "--integration",
        "command",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    configure.extend((adapter.job)(&suite, &out));
    configure.extend(["--credential-env".into(), "RUNNER_TOKEN".into()]);
    let args: Vec<&str> = configure.iter().map(String::as_str).collect();
    server.cli().env("RUNNER_TOKEN", TOKEN).run(&args).ok();

    let r = server
        .cli()
        .run(&[
            "testcase",
            "run",
            "--case",
            &plain_id.to_string(),
            "--case",
            &with_id_id.to_string(),
            "--case",
            &removed_id.to_string(),
            "--launch-name",
            "Planned",
        ])
        .ok();
    let launch: i64 = r.stdout.trim().parse().expect("the launch id on stdout");

    let deadline = Instant::now() + Duration::from_secs(180);
    let run = loop {
        let runs = api.job_runs(launch);
        if runs.len() == 1 && (runs[0]["stage"] == "finished" || runs[0]["stage"] == "run_failure")
        {
            break runs[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the job run did not finish: {runs:?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(run["stage"], "finished", "{run}\n{}", server.log());
    let run_id = run["id"].as_i64().unwrap();

    // The plan the job got: `id` only where the case has its own ALLURE_ID.
    let file: Value = serde_json::from_slice(
        &std::fs::read(out.join(format!("testplan-{run_id}.json"))).unwrap(),
    )
    .unwrap();
    let ids: Vec<&str> = file["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["9001", "9002"], "{file}");

    // Only planned tests ran: the impostor was not selected.
    let names: Vec<String> = api
        .results(launch)
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    let mut want = vec![plain.to_string(), with_id.to_string()];
    want.sort();
    assert_eq!(sorted, want, "{impostor} ran although not planned");

    // Two of three planned tests reported: the job run is not passed, and
    // the launch, the job run and `launch show` name the missing one.
    assert_eq!(run["status"], "broken", "{run}");
    let expected = serde_json::json!({"planned": 3, "reported": 2, "missing": [
        {"testCaseId": removed_id, "name": removed, "jobRunId": run_id}]});
    assert_eq!(run["planned"], expected, "{run}");
    assert_eq!(
        api.get(&format!("/api/launch/{launch}"))["planned"],
        expected
    );
    assert_eq!(
        api.get(&format!("/api/jobrun/{run_id}"))["planned"],
        expected
    );
    let shown = server
        .cli()
        .run(&["launch", "show", &launch.to_string()])
        .ok();
    assert!(
        shown.stdout.contains(&format!(
            "Planned: 2 of 3 planned tests reported; missing 1: {removed} (test case {removed_id})"
        )),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains("finished broken"), "{}", shown.stdout);
    let json = server
        .cli()
        .run(&["launch", "show", &launch.to_string(), "-o", "json"])
        .ok();
    let json: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["launch"]["planned"], expected);
}

#[test]
fn allure_pytest_runs_only_planned_tests_and_a_missing_one_is_shown() {
    planned_round_trip(&PYTEST);
}

#[test]
fn allure_mocha_runs_only_planned_tests_and_a_missing_one_is_shown() {
    planned_round_trip(&MOCHA);
}
