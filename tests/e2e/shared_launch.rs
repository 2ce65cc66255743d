//! One launch shared by many CI pipelines: a GitHub workflow starts it
//! (`job-run start`), and each real framework's output of
//! `tests/fixtures/frameworks/` is uploaded into it by the real CLI from a CI
//! identity of its own (GitHub Actions, GitLab CI, Jenkins), joining through
//! `ALLURE_LAUNCH_ID` with a job run of its own. Per job run the counts per
//! final status are the framework's own (`expected.txt`, taken from its console
//! summary and its own files when the fixture was produced), the launch is their
//! sum, and field facts read from the framework's own files and console arrive:
//! never compared with what onelaunch stored before.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde_json::Value;

use crate::support::*;

/// A CI identity, set the way the CI itself sets its environment.
#[derive(Clone, Copy)]
enum Ci {
    /// GitHub Actions: repository, workflow, run id.
    GitHub(&'static str, &'static str, &'static str),
    /// GitLab CI: project path, pipeline id, job name.
    GitLab(&'static str, &'static str, &'static str),
    /// Jenkins: job name, build number.
    Jenkins(&'static str, &'static str),
}
use Ci::*;

impl Ci {
    fn kind(self) -> &'static str {
        match self {
            GitHub(..) => "github",
            GitLab(..) => "gitlab",
            Jenkins(..) => "jenkins",
        }
    }

    fn env(self) -> Vec<(String, String)> {
        let pairs: Vec<(&str, String)> = match self {
            GitHub(repo, workflow, run) => vec![
                ("GITHUB_ACTIONS", "true".into()),
                ("GITHUB_SERVER_URL", "https://github.com".into()),
                ("GITHUB_REPOSITORY", repo.into()),
                ("GITHUB_WORKFLOW", workflow.into()),
                ("GITHUB_RUN_ID", run.into()),
                ("GITHUB_RUN_NUMBER", "3".into()),
                ("GITHUB_RUN_ATTEMPT", "1".into()),
                ("GITHUB_JOB", "test".into()),
                ("GITHUB_REF", "refs/heads/main".into()),
                (
                    "GITHUB_SHA",
                    "0123456789abcdef0123456789abcdef01234567".into(),
                ),
            ],
            GitLab(project, pipeline, job) => {
                let url = format!("https://gitlab.com/{project}");
                vec![
                    ("GITLAB_CI", "true".into()),
                    ("CI", "true".into()),
                    ("CI_SERVER_URL", "https://gitlab.com".into()),
                    // Each GitLab project of the table has its own id.
                    (
                        "CI_PROJECT_ID",
                        format!("42{}", project.bytes().map(u32::from).sum::<u32>()),
                    ),
                    ("CI_PROJECT_PATH", project.into()),
                    (
                        "CI_PROJECT_NAME",
                        project.rsplit('/').next().unwrap().into(),
                    ),
                    ("CI_PROJECT_URL", url.clone()),
                    ("CI_PIPELINE_ID", pipeline.into()),
                    ("CI_PIPELINE_URL", format!("{url}/-/pipelines/{pipeline}")),
                    ("CI_JOB_ID", format!("{pipeline}01")),
                    ("CI_JOB_NAME", job.into()),
                    ("CI_JOB_URL", format!("{url}/-/jobs/{pipeline}01")),
                    ("CI_COMMIT_BRANCH", "main".into()),
                    (
                        "CI_COMMIT_SHA",
                        "89abcdef0123456789abcdef0123456789abcdef".into(),
                    ),
                ]
            }
            Jenkins(job, build) => {
                let url = format!("https://jenkins.example.com/job/{job}/");
                vec![
                    ("JENKINS_URL", "https://jenkins.example.com/".into()),
                    ("JOB_NAME", job.into()),
                    ("JOB_BASE_NAME", job.into()),
                    ("JOB_URL", url.clone()),
                    ("BUILD_NUMBER", build.into()),
                    ("BUILD_ID", build.into()),
                    ("BUILD_DISPLAY_NAME", format!("#{build}")),
                    ("BUILD_URL", format!("{url}{build}/")),
                ]
            }
        };
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// Fixture directory, what to upload from it (a report file or a results
/// directory) and the CI identity that uploads it. `pytest-xunit1` and
/// `pytest-xunit2` are the same pytest tests (same `classname.name`) uploaded by
/// two pipelines: attempts belong to one job, so each keeps its own results and
/// counts.
#[rustfmt::skip]
const ROWS: &[(&str, &str, Ci)] = &[
    ("allure-pytest", "results", GitHub("acme/shop", "python", "5101")),
    ("pytest-xunit1", "report.xml", GitLab("acme/api-tests", "7001", "pytest")),
    ("pytest-xunit2", "report.xml", GitLab("acme/api-tests-2", "7003", "pytest")),
    ("jest-junit", "junit.xml", Jenkins("web-jest", "12")),
    ("surefire", "TEST-com.example.SampleTest.xml", Jenkins("java-surefire", "40")),
    ("gotestsum", "junit.xml", GitLab("acme/go-service", "7002", "go-test")),
    ("allure-mocha", "allure-results", GitHub("acme/web", "mocha", "5102")),
];

fn dir_of(framework: &str) -> PathBuf {
    fixture(&format!("tests/fixtures/frameworks/{framework}"))
}

/// `expected.txt`: counts per final status (zeros left out) and attempts.
fn expected(framework: &str) -> (BTreeMap<String, i64>, usize) {
    let text = std::fs::read_to_string(dir_of(framework).join("expected.txt")).unwrap();
    let mut counts: BTreeMap<String, i64> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().parse().unwrap()))
        .collect();
    let attempts = counts.remove("attempts").unwrap() as usize;
    // Errors outside tests (a failing hook) are checked on their own.
    counts.remove("global_errors");
    counts.retain(|_, n| *n > 0);
    (counts, attempts)
}

/// The lines of the framework's own console output containing `needle`.
fn console(framework: &str, needle: &str) -> Vec<String> {
    std::fs::read_to_string(dir_of(framework).join("console.txt"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.trim().to_string())
        .collect()
}

fn counts_of(results: &[&Value]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for r in results.iter().filter(|r| r["retry"] == false) {
        *counts
            .entry(r["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

fn attachment_text(server: &TestServer, id: &Value) -> String {
    reqwest::blocking::Client::new()
        .get(format!("{}/api/attachment/{id}/content", server.url))
        .header("Authorization", format!("api-token {TOKEN}"))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

/// What one framework's job run holds.
struct Uploaded<'a> {
    server: &'a TestServer,
    results: Vec<&'a Value>,
}

impl Uploaded<'_> {
    fn named(&self, name: &str) -> Vec<&Value> {
        self.results
            .iter()
            .copied()
            .filter(|r| r["name"] == name)
            .collect()
    }

    /// The final attempt of the test called `name`.
    fn last(&self, name: &str) -> &Value {
        let all = self.named(name);
        let finals: Vec<&&Value> = all.iter().filter(|r| r["retry"] == false).collect();
        assert_eq!(finals.len(), 1, "{name}: {all:?}");
        finals[0]
    }

    fn detail(&self, r: &Value) -> Value {
        self.server
            .api()
            .get(&format!("/api/testresult/{}", r["id"]))
    }

    /// Texts of the stored attachments of a result.
    fn texts(&self, r: &Value) -> Vec<String> {
        self.detail(r)["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["stored"] == true)
            .map(|a| attachment_text(self.server, &a["id"]))
            .collect()
    }
}

/// allure-pytest's own result files.
fn allure_results(framework: &str) -> Vec<Value> {
    let dir = dir_of(framework).join("results");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with("-result.json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

#[test]
fn one_launch_shared_by_every_framework_from_its_own_ci_identity() {
    let server = TestServer::start();
    let api = server.api();

    // The launch is started by one GitHub workflow.
    let starter = Cli::new(&server.url, TOKEN).envs(
        &GitHub("acme/release", "release", "5100")
            .env()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );
    starter.run(&["job-run", "start"]).ok();
    let vars = parse_env(
        &starter
            .run(&["job-run", "env", "--format", "dotenv"])
            .ok()
            .stdout,
    );
    let launch: i64 = vars["ALLURE_LAUNCH_ID"].parse().unwrap();
    let starter_run: i64 = vars["ALLURE_JOB_RUN_ID"].parse().unwrap();
    // What a downstream pipeline is handed: the launch, not the job run.
    let joined: Vec<(&str, &str)> = vars
        .iter()
        .filter(|(k, _)| k.starts_with("ALLURE_LAUNCH_"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();

    // Each framework's output from its own CI identity.
    let mut job_run_of: HashMap<&str, i64> = HashMap::new();
    for &(framework, upload, ci) in ROWS {
        let work = server.work_dir().join(format!("ci-{framework}"));
        let from = dir_of(framework).join(upload);
        if from.is_dir() {
            copy_dir(&from, &work);
        } else {
            std::fs::create_dir_all(&work).unwrap();
            std::fs::copy(&from, work.join(upload)).unwrap();
        }
        let env = ci.env();
        let cli = Cli::new(&server.url, TOKEN)
            .envs(
                &env.iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect::<Vec<_>>(),
            )
            .envs(&joined);
        assert!(!cli.env.contains_key("ALLURE_JOB_RUN_ID"));
        let run = cli.run(&["upload", work.to_str().unwrap()]).ok();
        let runs = api.job_runs(launch);
        let new: Vec<&Value> = runs
            .iter()
            .filter(|r| r["id"] != starter_run && !job_run_of.values().any(|id| r["id"] == *id))
            .collect();
        assert_eq!(
            new.len(),
            1,
            "{framework}: a job run of its own: {runs:?}\n{}",
            run.all()
        );
        assert_eq!(new[0]["job"]["type"], ci.kind(), "{framework}: {}", new[0]);
        assert_eq!(new[0]["launchId"], launch);
        job_run_of.insert(framework, new[0]["id"].as_i64().unwrap());
    }
    assert_eq!(api.job_runs(launch).len(), ROWS.len() + 1);

    // Per job run: the framework's own counts and every attempt stored.
    let all = api.results(launch);
    let mut total: BTreeMap<String, i64> = BTreeMap::new();
    let mut attempts_total = 0;
    let mut uploaded: HashMap<&str, Uploaded> = HashMap::new();
    for &(framework, _, _) in ROWS {
        let (counts, attempts) = expected(framework);
        let results: Vec<&Value> = all
            .iter()
            .filter(|r| r["jobRunId"] == job_run_of[framework])
            .collect();
        assert_eq!(
            results.len(),
            attempts,
            "{framework}: every attempt is stored"
        );
        assert_eq!(
            counts_of(&results),
            counts,
            "{framework}: the framework's own counts"
        );
        // Errors outside tests (allure-mocha's failing hook) on its job run.
        let text = std::fs::read_to_string(dir_of(framework).join("expected.txt")).unwrap();
        let global_errors = text
            .lines()
            .find_map(|l| l.strip_prefix("global_errors="))
            .map_or(0, |n| n.trim().parse::<i64>().unwrap());
        let g = api.get(&format!("/api/jobrun/{}/globals", job_run_of[framework]));
        assert_eq!(
            g["errorCount"], global_errors,
            "{framework}: errors outside tests: {g}"
        );
        for r in results.iter().filter(|r| r["retry"] == false) {
            let detail = api.get(&format!("/api/testresult/{}", r["id"]));
            assert!(
                detail["result"]["duration"].is_i64(),
                "{framework}: {} has no duration: {detail}",
                r["name"]
            );
        }
        for (status, n) in counts {
            *total.entry(status).or_default() += n;
        }
        attempts_total += attempts;
        uploaded.insert(
            framework,
            Uploaded {
                server: &server,
                results,
            },
        );
    }
    assert_eq!(all.len(), attempts_total, "nothing else in the launch");
    assert_eq!(
        api.statistic(launch),
        total,
        "the launch is the sum of the frameworks"
    );

    // A test of the same name in two frameworks stays two tests.
    for name in ["test_always_fails", "test_flaky"] {
        let a = uploaded["allure-pytest"].last(name);
        let b = uploaded["pytest-xunit1"].last(name);
        assert_ne!(a["id"], b["id"]);
        assert_eq!(a["status"], b["status"], "{name}");
    }

    allure_pytest_facts(&uploaded["allure-pytest"]);
    pytest_facts(&uploaded["pytest-xunit1"]);
    jest_facts(&uploaded["jest-junit"]);
    surefire_facts(&uploaded["surefire"]);
    gotestsum_facts(&uploaded["gotestsum"]);
}

fn allure_pytest_facts(up: &Uploaded) {
    let files = allure_results("allure-pytest");
    // Every execution allure-pytest wrote, with its status, message, duration and
    // parameters; the latest `start` of each test is the final attempt.
    for file in &files {
        let stored: Vec<&Value> = up
            .results
            .iter()
            .copied()
            .filter(|r| r["uuid"] == file["uuid"])
            .collect();
        assert_eq!(stored.len(), 1, "{file}");
        let r = stored[0];
        assert_eq!(r["status"], file["status"]);
        assert_eq!(
            r["message"], file["statusDetails"]["message"],
            "{}",
            file["name"]
        );
        let later = files.iter().any(|f| {
            f["historyId"] == file["historyId"] && f["start"].as_i64() > file["start"].as_i64()
        });
        assert_eq!(r["retry"], later, "{}", file["name"]);
        let detail = up.detail(r)["result"].clone();
        let took = file["stop"].as_i64().unwrap() - file["start"].as_i64().unwrap();
        assert_eq!(detail["duration"], took, "{}", file["name"]);
        let params = |v: &Value| -> Vec<(String, String)> {
            v.as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| (p["name"].to_string(), p["value"].to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(params(&detail["parameters"]), params(&file["parameters"]));
    }
    // pytest's own summary: what failed, with which message.
    for (test, status) in [("test_always_fails", "failed"), ("test_breaks", "broken")] {
        let line = &console(
            "allure-pytest",
            &format!("FAILED test_sample.py::{test} - "),
        )[0];
        let message = line.split_once(" - ").unwrap().1;
        let last = up.last(test);
        assert_eq!(last["status"], status);
        assert!(
            last["message"].as_str().unwrap().contains(message),
            "{last}"
        );
    }
    // Reruns (pytest-rerunfailures): earlier attempts, then the outcome.
    assert_eq!(up.named("test_always_fails").len(), 3);
    let flaky = up.named("test_flaky");
    assert_eq!(flaky.len(), 2);
    assert_eq!(up.last("test_flaky")["status"], "passed");
    assert!(flaky
        .iter()
        .any(|r| r["retry"] == true && r["status"] == "failed"));
    // Steps, attachment, fixture, labels and links of the titled test.
    let cart = up.last("The cart holds what was put in it");
    let detail = up.detail(cart);
    let result = &detail["result"];
    let steps: Vec<&str> = result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["body"].as_str())
        .collect();
    assert!(
        steps.contains(&"put a pear in the cart") && steps.contains(&"count the items"),
        "{result}"
    );
    let texts = up.texts(cart);
    assert!(texts.iter().any(|t| t == "apple, pear"), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("stdout of test_passes")),
        "{texts:?}"
    );
    assert!(
        detail["fixtures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "cart" && f["type"] == "BEFORE"),
        "{detail}"
    );
    let labels = result["labels"].as_array().unwrap();
    for (name, value) in [
        ("feature", "checkout"),
        ("story", "cart"),
        ("severity", "critical"),
    ] {
        assert!(
            labels
                .iter()
                .any(|l| l["name"] == name && l["value"] == value),
            "{name}: {labels:?}"
        );
    }
    assert!(
        result["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["url"] == "https://example.com/issues/17" && l["type"] == "issue"),
        "{result}"
    );
    let xfail = up.last("test_expected_to_fail");
    assert_eq!(xfail["status"], "skipped");
    assert!(xfail["message"].as_str().unwrap().contains("known bug 42"));
}

fn pytest_facts(up: &Uploaded) {
    let line = &console(
        "pytest-xunit1",
        "FAILED test_sample.py::test_always_fails - ",
    )[0];
    let message = line.split_once(" - ").unwrap().1;
    let last = up.last("test_always_fails");
    assert_eq!(last["status"], "failed");
    assert!(
        last["message"].as_str().unwrap().starts_with(message),
        "{last}"
    );
    // "--reruns 2": three runs, the last decides.
    assert_eq!(up.named("test_always_fails").len(), 3);
    assert_eq!(up.last("test_flaky")["status"], "passed");
    let texts = up.texts(up.last("test_passes"));
    assert!(
        texts.iter().any(|t| t.contains("stdout of test_passes")),
        "{texts:?}"
    );
}

fn jest_facts(up: &Uploaded) {
    // jest's own console: the failing expectation and the console.log output.
    let divides = up.last("calculator divides");
    assert_eq!(divides["status"], "failed");
    let expectation = &console("jest-junit", "expect(received).toBe(expected)")[0];
    assert!(
        divides["message"].as_str().unwrap().contains(expectation),
        "{divides}"
    );
    let texts = up.texts(up.last("calculator adds"));
    assert!(
        texts.iter().any(|t| t.contains("console output of adds")),
        "{texts:?}"
    );
}

fn surefire_facts(up: &Uploaded) {
    // Surefire's own console names the failure and its message.
    let line = &console("surefire", "arithmetic is broken")[0];
    let last = up.last("alwaysFails");
    assert_eq!(last["status"], "failed");
    assert!(
        line.contains(last["message"].as_str().unwrap()),
        "{line} / {last}"
    );
    assert_eq!(up.named("alwaysFails").len(), 3);
    let flaky = up.named("flaky");
    assert_eq!(flaky.len(), 2);
    assert_eq!(up.last("flaky")["status"], "passed");
    let texts = up.texts(last);
    assert!(
        texts.iter().any(|t| t.contains("stdout of alwaysFails")),
        "{texts:?}"
    );
}

fn gotestsum_facts(up: &Uploaded) {
    // go test's own lines: the error and the t.Log output are in the failure's
    // text; `--- PASS: TestPasses (0.02s)` is the duration.
    let fails = up.last("TestFails");
    assert_eq!(fails["status"], "failed");
    assert_eq!(
        up.named("TestFails").len(),
        3,
        "the first run and two reruns"
    );
    let trace = up.detail(fails)["result"]["trace"]
        .as_str()
        .unwrap()
        .to_string();
    for needle in ["arithmetic is broken", "log of TestFails"] {
        assert!(trace.contains(&console("gotestsum", needle)[0]), "{trace}");
    }
    let line = &console("gotestsum", "--- PASS: TestPasses")[0];
    let seconds: f64 = line
        .rsplit_once('(')
        .unwrap()
        .1
        .trim_end_matches("s)")
        .parse()
        .unwrap();
    let passes = up.detail(up.last("TestPasses"));
    assert_eq!(
        passes["result"]["duration"].as_i64(),
        Some((seconds * 1000.0).round() as i64)
    );
    // The flaky test failed, then passed on gotestsum's rerun.
    let flaky = up.named("TestFlaky");
    assert_eq!(flaky.len(), 2);
    assert_eq!(up.last("TestFlaky")["status"], "passed");
    assert_eq!(up.last("TestSubtests/divides")["status"], "failed");
    assert_eq!(up.last("TestSubtests/adds")["status"], "passed");
}
