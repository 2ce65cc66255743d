//! The Jenkins shared library (`plugins/jenkins/vars/onelaunch.groovy`) run by
//! its Groovy harness (`plugins/jenkins/test/run`): the pipeline steps are
//! emulated, every `sh` step really runs the CLI against a real server.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::release_server::{host_target, LocalRelease};
use crate::support::*;

const CREDENTIAL_ID: &str = "onelaunch-token";
const BUILD_URL: &str = "https://jenkins.example.com/job/shop/job/release/42/";
const ALLOWED_STEPS: &[&str] = &[
    "sh",
    "withEnv",
    "withCredentials",
    "string",
    "echo",
    "error",
    "writeFile",
    "readFile",
    "fileExists",
    "isUnix",
    "libraryResource",
    "env",
    // Windows agents only.
    "bat",
    "powershell",
    // Used by the pipeline script itself.
    "parallel",
    "stage",
    "node",
];

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `JAVA_HOME` of the `java` on PATH, when `groovy` and `java` are installed.
fn groovy_runner() -> Option<PathBuf> {
    let java = which("java")?;
    which("groovy")?;
    let java = std::fs::canonicalize(java).ok()?;
    Some(java.parent()?.parent()?.to_path_buf())
}

fn require_groovy() -> Option<PathBuf> {
    let found = groovy_runner();
    if found.is_none() {
        if std::env::var("ONELAUNCH_REQUIRE_RUNNERS").as_deref() == Ok("1") {
            panic!("groovy (and java) not installed: run scripts/tools/groovy.sh");
        }
        eprintln!(
            "SKIPPED: groovy not installed; run scripts/tools/groovy.sh \
             (the Jenkins shared-library tests did not run)"
        );
    }
    found
}

struct Build {
    code: i32,
    output: String,
    step_log: String,
    steps: Vec<Value>,
}

impl Build {
    /// Console lines between two echo markers of the pipeline.
    fn between(&self, from: &str, to: &str) -> String {
        let start = self.output.find(from).expect("start marker") + from.len();
        let end = start + self.output[start..].find(to).expect("end marker");
        self.output[start..end].to_string()
    }

    /// `sh` steps issued by the library (they run the CLI).
    fn library_sh(&self) -> Vec<&Value> {
        self.steps
            .iter()
            .filter(|s| s["step"] == "sh")
            .filter(|s| {
                s["script"]
                    .as_str()
                    .unwrap()
                    .contains("\"$ONELAUNCH_BINARY\"")
            })
            .collect()
    }
}

/// A Jenkins build of `pipeline` (a script in plugins/jenkins/test/) with its
/// own workspace.
fn run_pipeline(server: &TestServer, java_home: &Path, ws: &Path, pipeline: &str) -> Build {
    run_build(server, java_home, ws, pipeline, 42, &json!([]))
}

/// Build `number` of the job, with the job's recorded builds and their causes
/// (`currentBuild`, see plugins/jenkins/test/harness.groovy).
fn run_build(
    server: &TestServer,
    java_home: &Path,
    ws: &Path,
    pipeline: &str,
    number: u32,
    builds: &Value,
) -> Build {
    let test_dir = repo().join("plugins/jenkins/test");
    run_agent_build(
        server,
        java_home,
        ws,
        &test_dir,
        pipeline,
        number,
        builds,
        &[],
    )
}

/// Build `number` of `pipeline` with the library whose test/ directory is
/// `test_dir`, and `agent` added to (or replacing) the agent's environment.
#[allow(clippy::too_many_arguments)]
fn run_agent_build(
    server: &TestServer,
    java_home: &Path,
    ws: &Path,
    test_dir: &Path,
    pipeline: &str,
    number: u32,
    builds: &Value,
    agent: &[(&str, OsString)],
) -> Build {
    let step_log = ws.with_file_name(format!(
        "{}.steps.log",
        ws.file_name().unwrap().to_string_lossy()
    ));
    let mut child = Command::new(test_dir.join("run"))
        .arg("--workspace")
        .arg(ws)
        .arg("--step-log")
        .arg(&step_log)
        .arg(test_dir.join(pipeline))
        .current_dir(ws)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()),
        )
        .env("JAVA_HOME", java_home)
        .env("XDG_CONFIG_HOME", "/nonexistent-onelaunch-config")
        // What a Jenkins agent gives the build (the CLI detects Jenkins from it).
        .env("JENKINS_URL", "https://jenkins.example.com/")
        .env("JOB_NAME", "shop/release")
        .env("JOB_BASE_NAME", "release")
        .env(
            "JOB_URL",
            "https://jenkins.example.com/job/shop/job/release/",
        )
        .env("BUILD_NUMBER", number.to_string())
        .env("BUILD_DISPLAY_NAME", format!("#{number}"))
        .env(
            "BUILD_URL",
            BUILD_URL.replace("/42/", &format!("/{number}/")),
        )
        .env("ONELAUNCH_TEST_BUILDS_JSON", builds.to_string())
        .env("WORKSPACE", ws)
        // Test parameters of the pipeline scripts.
        .env("ONELAUNCH_TEST_ENDPOINT", &server.url)
        .env("ONELAUNCH_TEST_BINARY", bin())
        // The shard scripts and markers of shards.groovy (tests/e2e/wrapper_shards.rs).
        .env("ONELAUNCH_TEST_SHARDS", ws.with_file_name("shards"))
        .env(
            "ONELAUNCH_TEST_CREDENTIALS_JSON",
            json!({ CREDENTIAL_ID: TOKEN }).to_string(),
        )
        .envs(agent.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run plugins/jenkins/test/run");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the harness") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the Jenkins harness did not finish within 240 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    let step_log = std::fs::read_to_string(&step_log).unwrap_or_default();
    let steps = step_log
        .lines()
        .map(|l| serde_json::from_str(l).expect("step log line is JSON"))
        .collect();
    Build {
        code: status.code().unwrap_or(-1),
        output,
        step_log,
        steps,
    }
}

fn workspace(root: &Path) -> PathBuf {
    let ws = root.join("workspace").join("shop_release");
    std::fs::create_dir_all(&ws).unwrap();
    ws
}

/// Every file under `dir` (recursively) that contains `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if String::from_utf8_lossy(&std::fs::read(&p).unwrap()).contains(needle) {
                found.push(p);
            }
        }
    }
    found
}

#[track_caller]
fn assert_no_token(build: &Build, server: &TestServer, root: &Path) {
    assert!(
        !build.output.contains(TOKEN),
        "token leaked into the build output"
    );
    assert!(
        !build.step_log.contains(TOKEN),
        "token leaked into the step log"
    );
    assert!(
        !server.log().contains(TOKEN),
        "token leaked into the server log"
    );
    let files = files_containing(root, TOKEN);
    assert!(files.is_empty(), "token leaked into {files:?}");
}

#[track_caller]
fn assert_only_allowed_steps(build: &Build) {
    for s in &build.steps {
        let step = s["step"].as_str().unwrap();
        assert!(ALLOWED_STEPS.contains(&step), "step {step} used: {s}");
    }
    assert!(
        build.output.contains("harness: self-check passed"),
        "{}",
        build.output
    );
}

/// Issue 13: a parallel branch that ends long after the other keeps all its
/// results. plugins/jenkins/test/shards.groovy: start creates the launch and
/// the build's job run; two `parallel` branches share it; the fast branch
/// uploads and then runs `onelaunch.finish` while the slow branch's
/// `onelaunch.watch` is still uploading. The finish's `launch close --wait`
/// must wait for that upload: every result of both branches ends up in the
/// closed launch, and the build succeeds.
#[test]
fn jenkins_finish_in_the_fast_branch_loses_no_result_of_the_slow_branch() {
    let Some(java_home) = require_groovy() else {
        return;
    };
    let server = TestServer::start();
    let api = server.api();
    let root = tempfile::tempdir().unwrap();
    let ws = workspace(root.path());
    let shards = crate::wrapper_shards::Shards::new(&ws.with_file_name("shards"));
    let watcher = shards.watch(&api);
    let build = run_pipeline(&server, &java_home, &ws, "shards.groovy");
    let saw_slow_upload = watcher.done();
    assert!(
        saw_slow_upload && shards.finish_started(),
        "the finish did not run while the slow branch uploaded:\n{}",
        build.output
    );
    // The slow branch's watch and the fast branch's finish (job-run stop,
    // launch close --wait) exited 0.
    assert_eq!(build.code, 0, "pipeline failed:\n{}", build.output);
    assert!(
        build.output.contains("Finished: SUCCESS"),
        "{}",
        build.output
    );
    assert!(
        build.output.contains("[Fast shard] Launch [") && build.output.contains("] closed"),
        "{}",
        build.output
    );
    assert_only_allowed_steps(&build);
    crate::wrapper_shards::assert_every_result_in_the_closed_launch(&api, &build.output);
    assert_no_token(&build, &server, root.path());
}

#[test]
fn jenkins_library_start_parallel_uploads_finish_share_one_launch() {
    let Some(java_home) = require_groovy() else {
        return;
    };
    let server = TestServer::start();
    let api = server.api();
    let root = tempfile::tempdir().unwrap();
    let ws = workspace(root.path());
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    let junit = fixture("examples/pipelines/gitlab-api/results");
    copy_dir(&unit, &ws.join("test-output/unit"));
    copy_dir(&junit, &ws.join("test-output/api"));

    let build = run_pipeline(&server, &java_home, &ws, "pipeline.groovy");
    assert_eq!(build.code, 0, "pipeline failed:\n{}", build.output);
    assert!(
        build.output.contains("Finished: SUCCESS"),
        "{}",
        build.output
    );
    assert_only_allowed_steps(&build);

    // Exactly one launch, named and tagged by start, closed by finish.
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    let launch = &launches[0];
    let id = launch["id"].as_i64().unwrap();
    assert_eq!(launch["name"], "shop release #42");
    assert_eq!(launch["closed"], true, "finish closes the launch");
    let tags: Vec<&str> = launch["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["jenkins", "release"]);

    // Every result of both branches, with exact counts by status.
    let allure_results = count_files(&unit, "-result.json");
    let junit_cases = 5;
    assert_eq!(api.results(id).len(), allure_results + junit_cases);
    let mut expected = expected_statistic(&[&unit]);
    *expected.entry("passed".into()).or_insert(0) += 4;
    *expected.entry("failed".into()).or_insert(0) += 1;
    assert_eq!(api.statistic(id), expected);

    // One job run, the Jenkins build, holding all results, finished.
    let runs = api.job_runs(id);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    let run_id = run["id"].as_i64().unwrap();
    assert_eq!(run["externalId"], "42");
    assert_eq!(run["url"], BUILD_URL);
    assert_eq!(run["job"]["type"], "jenkins");
    assert_eq!(run["job"]["name"], "release");
    assert_eq!(
        run["resultCount"].as_i64().unwrap() as usize,
        allure_results + junit_cases
    );
    assert_eq!(run["stage"], "finished");

    // Both branches uploaded into that launch and job run.
    for (branch, n) in [("Unit tests", allure_results), ("API tests", junit_cases)] {
        let line = format!("[{branch}] Uploaded {n} new results");
        assert!(build.output.contains(&line), "{line}:\n{}", build.output);
        assert!(
            build.output.contains(&format!(
                "[{branch}] Launch link: {}/launch/{id}",
                server.url
            )),
            "{}",
            build.output
        );
    }

    // The library's shell steps: start, one upload per branch, one finish
    // (the second finish runs nothing). The token only reaches them through
    // withCredentials; endpoint, names and paths only through withEnv.
    let sh = build.library_sh();
    assert_eq!(sh.len(), 4, "{sh:#?}");
    let binary = bin().display().to_string();
    for s in &sh {
        let script = s["script"].as_str().unwrap();
        assert!(script.starts_with("set +x\n"), "{script}");
        for literal in [
            server.url.as_str(),
            binary.as_str(),
            "shop release",
            "build/",
        ] {
            assert!(
                !script.contains(literal),
                "{literal} interpolated into: {script}"
            );
        }
        assert_eq!(s["credentialVariables"], json!(["ALLURE_TOKEN"]), "{s}");
        assert_eq!(s["env"]["ALLURE_ENDPOINT"], server.url.as_str(), "{s}");
        assert_eq!(s["env"]["ONELAUNCH_BINARY"], binary.as_str(), "{s}");
        assert_eq!(s["exitCode"], 0, "{s}");
    }
    let uploads: BTreeMap<&str, &Value> = sh
        .iter()
        .filter(|s| s["script"].as_str().unwrap().contains("upload \"$@\""))
        .map(|s| (s["branch"].as_str().unwrap(), *s))
        .collect();
    assert_eq!(
        uploads.keys().copied().collect::<Vec<_>>(),
        ["API tests", "Unit tests"]
    );
    for s in uploads.values() {
        // start's env.ALLURE_* reached the parallel branches.
        assert_eq!(s["env"]["ALLURE_LAUNCH_ID"], id.to_string(), "{s}");
        assert_eq!(s["env"]["ALLURE_JOB_RUN_ID"], run_id.to_string(), "{s}");
    }
    assert_eq!(
        uploads["Unit tests"]["env"]["ONELAUNCH_RESULTS"],
        "build/allure-results"
    );
    assert_eq!(
        uploads["API tests"]["env"]["ONELAUNCH_RESULTS"],
        "api-tests/results"
    );

    // start's published values, read back from the file the CLI wrote.
    let published: Value =
        serde_json::from_str(&std::fs::read_to_string(ws.join("onelaunch-env.json")).unwrap())
            .unwrap();
    assert_eq!(published["ALLURE_LAUNCH_ID"], id.to_string());
    assert_eq!(published["ALLURE_JOB_RUN_ID"], run_id.to_string());
    assert_eq!(
        published["ALLURE_LAUNCH_URL"],
        format!("{}/launch/{id}", server.url)
    );

    // finish twice: the second call is quiet and runs nothing.
    let again = build.between("--- finish again ---\n", "--- end ---");
    assert_eq!(
        again.trim(),
        format!("onelaunch: launch {id}, job run {run_id} already finished"),
        "{}",
        build.output
    );
    let marker = build
        .steps
        .iter()
        .position(|s| s["message"] == "--- finish again ---")
        .expect("finish-again marker in the step log");
    assert!(
        !build.steps[marker..]
            .iter()
            .any(|s| s["step"] == "sh" || s["step"] == "error"),
        "the second finish ran a shell step or failed"
    );
    assert_eq!(api.launches(1).len(), 1);
    assert_eq!(api.launches(1)[0]["closed"], true);

    assert_no_token(&build, &server, root.path());
}

#[test]
fn jenkins_with_launch_uploads_and_finishes_when_the_body_fails() {
    let Some(java_home) = require_groovy() else {
        return;
    };
    let server = TestServer::start();
    let api = server.api();
    let root = tempfile::tempdir().unwrap();
    let ws = workspace(root.path());
    // Only the passing results: a job run status of `failed` then comes from
    // the failed body, not from the results.
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    let passing = ws.join("test-output/passing");
    std::fs::create_dir_all(&passing).unwrap();
    let mut passed = 0;
    for e in std::fs::read_dir(&unit).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().ends_with("-result.json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        if v["status"] == "passed" && v["attachments"].as_array().is_none_or(|a| a.is_empty()) {
            std::fs::copy(&p, passing.join(p.file_name().unwrap())).unwrap();
            passed += 1;
        }
    }
    assert!(passed > 0);

    let build = run_pipeline(&server, &java_home, &ws, "with-launch.groovy");
    assert_eq!(build.code, 0, "pipeline failed:\n{}", build.output);
    assert!(
        build.output.contains("withLaunch rethrew: tests crashed"),
        "{}",
        build.output
    );
    assert!(!build.output.contains("refused"), "{}", build.output);
    assert_only_allowed_steps(&build);

    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    let id = launches[0]["id"].as_i64().unwrap();
    assert_eq!(launches[0]["name"], "nightly");
    assert_eq!(launches[0]["closed"], true);
    assert_eq!(
        api.statistic(id),
        BTreeMap::from([("passed".to_string(), passed)])
    );
    let runs = api.job_runs(id);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["externalId"], "42");
    assert_eq!(runs[0]["stage"], "finished");
    assert_eq!(runs[0]["status"], "failed", "{runs:?}");
    assert_eq!(runs[0]["resultCount"], passed);

    // start, the upload of `results`, finish with the body's failure.
    let sh = build.library_sh();
    assert_eq!(sh.len(), 3, "{sh:#?}");
    assert_eq!(sh[2]["env"]["ONELAUNCH_STATUS"], "failed");

    assert_no_token(&build, &server, root.path());
}

/// Restart from Stage, then Replay: builds 43 and 44 re-run build 42, so they
/// report into build 42's job run (reopening the launch build 42 closed) as
/// new attempts; their JUnit results (same file, same tests, no timestamps)
/// become retries, and the latest build decides. A fresh build 45 gets a job
/// run and launch of its own.
#[test]
fn jenkins_restarted_and_replayed_builds_are_new_attempts_of_the_original_job_run() {
    let Some(java_home) = require_groovy() else {
        return;
    };
    let server = TestServer::start();
    let api = server.api();
    let root = tempfile::tempdir().unwrap();
    let ws = workspace(root.path());
    for (number, fail) in [(42, true), (43, false), (44, false), (45, true)] {
        let dir = ws.join(format!("test-output/build-{number}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("TEST-api.xml"), orders_junit(fail)).unwrap();
    }
    let user = json!({"_class": "hudson.model.Cause$UserIdCause", "shortDescription": "Started by user Ada"});
    let builds = json!([
        {"number": 42, "causes": [user]},
        {"number": 43, "causes": [{
            "_class": "org.jenkinsci.plugins.pipeline.modeldefinition.causes.RestartDeclarativePipelineCause",
            "shortDescription": "Restarted from build #42, stage Test"}]},
        {"number": 44, "causes": [user, {
            "_class": "org.jenkinsci.plugins.workflow.cps.replay.ReplayCause",
            "shortDescription": "Replayed #43"}]},
        {"number": 45, "causes": [user]},
    ]);

    let first = run_build(&server, &java_home, &ws, "restart.groovy", 42, &builds);
    assert_eq!(first.code, 0, "build 42 failed:\n{}", first.output);
    assert_only_allowed_steps(&first);
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1);
    let launch_id = launches[0]["id"].as_i64().unwrap();
    assert_eq!(launches[0]["closed"], true, "build 42 closed its launch");
    assert_eq!(api.statistic(launch_id)["failed"], 1);

    for number in [43, 44] {
        let build = run_build(&server, &java_home, &ws, "restart.groovy", number, &builds);
        assert_eq!(build.code, 0, "build {number} failed:\n{}", build.output);
        assert_only_allowed_steps(&build);
        let sh = build.library_sh();
        assert!(
            sh.iter().all(|s| s["env"]["ALLURE_JOB_RUN_UID"] == "42"),
            "build {number} did not report into build 42's job run: {sh:#?}"
        );
        assert!(
            build
                .output
                .contains(&format!("reported into launch {launch_id}, ")),
            "{}",
            build.output
        );
        assert_no_token(&build, &server, root.path());
    }

    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:#?}");
    assert_eq!(launches[0]["closed"], true, "closed again by build 44");
    let runs = api.job_runs(launch_id);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["externalId"], "42");
    assert_eq!(runs[0]["stage"], "finished");
    assert_eq!(runs[0]["status"], "passed", "the latest build decides");
    let results = api.results(launch_id);
    assert_eq!(results.len(), 6, "three builds x two tests: {results:#?}");
    for test in ["api.Orders.case_0", "api.Orders.case_1"] {
        let attempts: Vec<&Value> = results.iter().filter(|r| r["fullName"] == test).collect();
        assert_eq!(attempts.len(), 3, "{test}: {attempts:#?}");
        let latest: Vec<&&Value> = attempts.iter().filter(|r| r["retry"] == false).collect();
        assert_eq!(latest.len(), 1, "{test}");
        assert_eq!(latest[0]["status"], "passed", "{test}");
    }
    assert!(
        results.iter().any(|r| r["fullName"] == "api.Orders.case_0"
            && r["status"] == "failed"
            && r["retry"] == true),
        "build 42's failure stays visible as a retry"
    );
    assert_eq!(
        api.statistic(launch_id),
        BTreeMap::from([("passed".to_string(), 2)])
    );

    // A fresh build is a run of its own.
    let fresh = run_build(&server, &java_home, &ws, "restart.groovy", 45, &builds);
    assert_eq!(fresh.code, 0, "build 45 failed:\n{}", fresh.output);
    assert!(fresh
        .library_sh()
        .iter()
        .all(|s| s["env"].get("ALLURE_JOB_RUN_UID").is_none()));
    let launches = api.launches(1);
    assert_eq!(launches.len(), 2, "{launches:#?}");
    let other = launches
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .find(|id| *id != launch_id)
        .unwrap();
    assert_eq!(api.job_runs(other)[0]["externalId"], "45");
    assert_eq!(api.results(other).len(), 2);
    assert_eq!(api.results(launch_id).len(), 6);
    assert_no_token(&fresh, &server, root.path());
}

/// Issue 14: the finish step's quality gate
/// (plugins/jenkins/test/gate.groovy). A gate that holds lets the build go
/// on; `gateRules: ['--max-failures', '0']` after a failed test fails the
/// build with `error(...)` naming the broken `maxFailures` rule with its
/// measured and expected values, the table echoed and kept in
/// onelaunch-gate.md; the launch stays closed.
#[test]
fn jenkins_finish_with_a_broken_quality_gate_fails_the_build_after_closing() {
    let Some(java_home) = require_groovy() else {
        return;
    };
    let server = TestServer::start();
    let api = server.api();
    let root = tempfile::tempdir().unwrap();
    let ws = workspace(root.path());
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    copy_dir(&unit, &ws.join("test-output/unit"));

    let build = run_pipeline(&server, &java_home, &ws, "gate.groovy");
    assert_ne!(
        build.code, 0,
        "the broken gate did not fail:\n{}",
        build.output
    );
    assert!(
        build.output.contains("Finished: FAILURE"),
        "{}",
        build.output
    );
    assert!(
        build.output.contains("--- gate held ---"),
        "{}",
        build.output
    );
    assert!(!build.output.contains("--- not reached ---"));
    assert_only_allowed_steps(&build);

    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    assert_eq!(launches[0]["closed"], true);
    let id = launches[0]["id"].as_i64().unwrap();
    let failures = api
        .results(id)
        .iter()
        .filter(|r| r["status"] == "failed" || r["status"] == "broken")
        .count();
    assert!(failures >= 1);

    // The held gate's table, then the broken one's, and the error.
    let held = format!("| maxFailures | at most 5 | {failures}");
    let broken = format!("| maxFailures | at most 0 | {failures}");
    assert!(build.output.contains(&held), "{}", build.output);
    assert!(
        build
            .output
            .lines()
            .any(|l| l.contains(&broken) && l.ends_with("| **fail** |")),
        "{}",
        build.output
    );
    let error = build
        .output
        .lines()
        .find(|l| l.starts_with("ERROR: "))
        .unwrap_or_default();
    assert!(
        error.starts_with(&format!(
            "ERROR: onelaunch.finish: the quality gate of launch {id} failed"
        )) && error.contains(&format!("maxFailures: {failures}"))
            && error.contains("(expected at most 0)"),
        "{error}"
    );
    let kept = std::fs::read_to_string(ws.join("onelaunch-gate.md")).unwrap();
    assert!(kept.contains(&broken), "{kept}");
    assert_no_token(&build, &server, root.path());
}

// ------------------------------------------------ installing the pinned release

/// A copy of plugins/jenkins under `root` (what Jenkins checks out as the
/// library), with `release` pinned into it by scripts/release/pin; its test/
/// directory.
fn library_copy(root: &Path, release: Option<&LocalRelease>) -> PathBuf {
    let lib = root.join("plugins/jenkins");
    std::fs::create_dir_all(root.join("plugins")).unwrap();
    let ok = Command::new("cp")
        .arg("-a")
        .arg(repo().join("plugins/jenkins"))
        .arg(root.join("plugins"))
        .status()
        .unwrap();
    assert!(ok.success(), "cp -a plugins/jenkins");
    let committed = std::fs::read_to_string(lib.join("resources/onelaunch/checksums.json"))
        .expect("the library commits resources/onelaunch/checksums.json");
    assert!(
        committed.contains("\"version\": \"unreleased\""),
        "{committed}"
    );
    if let Some(release) = release {
        let out = release.pin_into(root);
        assert!(
            out.contains("pinned plugins/jenkins/resources/onelaunch/checksums.json"),
            "{out}"
        );
    }
    lib.join("test")
}

/// PATH without any directory that holds an `onelaunch`: an agent where the
/// CLI is not installed.
fn path_without_onelaunch() -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| !d.join("onelaunch").exists())
        .collect();
    std::env::join_paths(kept).unwrap()
}

/// The agent of the install tests: no onelaunch on PATH, the release's test
/// CA trusted by curl/wget, its URL for the pipeline's `releaseUrl`.
fn installing_agent(release_url: &str, ca_file: Option<&Path>) -> Vec<(&'static str, OsString)> {
    let mut env = vec![
        ("PATH", path_without_onelaunch()),
        ("ONELAUNCH_TEST_RELEASE_URL", OsString::from(release_url)),
    ];
    if let Some(ca) = ca_file {
        env.push(("CURL_CA_BUNDLE", ca.as_os_str().to_owned()));
        env.push(("SSL_CERT_FILE", ca.as_os_str().to_owned()));
    }
    env
}

fn sha256_hex(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The install steps of a build (the `sh`/`powershell` calls that report
/// `onelaunch-install: …`), in order.
fn install_steps(build: &Build) -> Vec<&Value> {
    build
        .steps
        .iter()
        .filter(|s| s["step"] == "sh" || s["step"] == "powershell")
        .filter(|s| {
            s["script"]
                .as_str()
                .unwrap()
                .contains("onelaunch-install: ")
        })
        .collect()
}

/// No binary configured and none on the agent's PATH: start downloads the
/// release pinned in the library's resources/onelaunch/checksums.json from
/// `releaseUrl` (HTTPS, test CA), verifies it against that file and caches it
/// under WORKSPACE@tmp; upload and finish reuse the cached copy (one download
/// in the release server's log); the results land in the real server. A
/// tampered asset, on an agent without the cached copy, fails the step with
/// the asset, the pinned and the actual hash, and no CLI runs.
#[test]
fn jenkins_step_installs_the_pinned_release_once_and_refuses_a_tampered_one() {
    let Some(java_home) = require_groovy() else {
        return;
    };
    let release = LocalRelease::start("v9.9.9");
    let server = TestServer::start();
    let api = server.api();
    let root = tempfile::tempdir().unwrap();
    let test_dir = library_copy(root.path(), Some(&release));
    let ws = workspace(root.path());
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    copy_dir(&unit, &ws.join("test-output/unit"));
    let agent = installing_agent(&release.base_url, Some(&release.ca_file));
    let target = host_target();

    let build = run_agent_build(
        &server,
        &java_home,
        &ws,
        &test_dir,
        "install.groovy",
        42,
        &json!([]),
        &agent,
    );
    assert_eq!(build.code, 0, "pipeline failed:\n{}", build.output);
    assert!(build.output.contains("Finished: SUCCESS"));
    assert_only_allowed_steps(&build);

    // One download of this machine's asset, nothing else fetched (no
    // checksum file from the release server: the pinned one is the reference).
    assert_eq!(release.downloads(target), 1, "{}", release.requests());
    assert_eq!(
        release.requests().lines().count(),
        1,
        "{}",
        release.requests()
    );
    let dir = PathBuf::from(format!("{}@tmp", ws.display()))
        .join("onelaunch/v9.9.9")
        .join(target);
    let installed = dir.join("onelaunch");
    let stamp = std::fs::read_to_string(dir.join("onelaunch.sha256")).unwrap();
    assert_eq!(
        stamp.split_whitespace().collect::<Vec<_>>(),
        [release.sha256(target), sha256_hex(&installed)],
        "the cache records the pinned archive hash and the executable's"
    );
    assert_eq!(sha256_hex(&installed), sha256_hex(&bin()));
    let installed = installed.display().to_string();
    assert_eq!(
        build
            .output
            .matches(&format!(
                "onelaunch: installed onelaunch v9.9.9 (SHA-256 verified against the library's \
                 onelaunch/checksums.json) as {installed}"
            ))
            .count(),
        1,
        "{}",
        build.output
    );

    // start installed it, upload and finish found it in the cache.
    let installs = install_steps(&build);
    let reports: Vec<&str> = installs
        .iter()
        .map(|s| s["stdout"].as_str().unwrap().trim())
        .collect();
    let asset = release.asset_name(target);
    assert_eq!(
        reports,
        [
            format!("onelaunch-install: installed {asset} {installed}"),
            format!("onelaunch-install: cached {asset} {installed}"),
            format!("onelaunch-install: cached {asset} {installed}"),
        ],
        "{installs:#?}"
    );
    for s in &installs {
        assert_eq!(s["env"]["ONELAUNCH_RELEASE_URL"], release.base_url.as_str());
        assert_eq!(s["env"]["ONELAUNCH_RELEASE_VERSION"], "v9.9.9");
        assert_eq!(s["credentialVariables"], json!([]), "no token to install");
    }
    let sh = build.library_sh();
    assert_eq!(sh.len(), 3, "{sh:#?}");
    for s in &sh {
        assert_eq!(s["env"]["ONELAUNCH_BINARY"], installed.as_str(), "{s}");
        assert_eq!(s["exitCode"], 0, "{s}");
    }

    // The installed CLI uploaded into the real server.
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    let id = launches[0]["id"].as_i64().unwrap();
    assert_eq!(launches[0]["name"], "installed");
    assert_eq!(launches[0]["closed"], true);
    assert_eq!(api.results(id).len(), count_files(&unit, "-result.json"));
    assert_no_token(&build, &server, root.path());

    // A tampered asset, on an agent without the cached copy.
    release.tamper(target);
    let actual = sha256_hex(&release.asset_path(target));
    assert_ne!(actual, release.sha256(target));
    let fresh = root.path().join("workspace").join("shop_tampered");
    std::fs::create_dir_all(&fresh).unwrap();
    copy_dir(&unit, &fresh.join("test-output/unit"));
    let refused = run_agent_build(
        &server,
        &java_home,
        &fresh,
        &test_dir,
        "install.groovy",
        43,
        &json!([]),
        &agent,
    );
    assert_ne!(refused.code, 0, "{}", refused.output);
    assert!(refused.output.contains("Finished: FAILURE"));
    let error = refused
        .output
        .lines()
        .find(|l| l.starts_with("ERROR: "))
        .unwrap_or_default();
    assert_eq!(
        error,
        format!(
            "ERROR: onelaunch.start: could not install onelaunch v9.9.9: checksum mismatch for {asset} \
             from {}: expected {} (the library's onelaunch/checksums.json), got {actual}; not running it",
            release.asset_url(target),
            release.sha256(target)
        ),
        "{}",
        refused.output
    );
    assert!(refused.library_sh().is_empty(), "a CLI step ran");
    assert!(!refused.output.contains("--- started launch"));
    assert_eq!(release.downloads(target), 2, "{}", release.requests());
    let fresh_dir = PathBuf::from(format!("{}@tmp", fresh.display())).join("onelaunch/v9.9.9");
    assert!(
        !fresh_dir.join(target).join("onelaunch").exists(),
        "the tampered binary was installed"
    );
    assert_eq!(
        api.launches(1).len(),
        1,
        "the refused build created a launch"
    );
    assert_no_token(&refused, &server, root.path());
}

/// The library as committed (resources/onelaunch/checksums.json says
/// "unreleased"), no binary configured, none on PATH: the step says to set
/// `binary` or use a released library version, and downloads nothing.
#[test]
fn jenkins_step_of_an_unreleased_library_without_a_binary_says_what_to_set() {
    let Some(java_home) = require_groovy() else {
        return;
    };
    let server = TestServer::start();
    let root = tempfile::tempdir().unwrap();
    let test_dir = library_copy(root.path(), None);
    let ws = workspace(root.path());
    let agent = installing_agent("https://127.0.0.1:9/never", None);
    let build = run_agent_build(
        &server,
        &java_home,
        &ws,
        &test_dir,
        "install.groovy",
        42,
        &json!([]),
        &agent,
    );
    assert_ne!(build.code, 0, "{}", build.output);
    let error = build
        .output
        .lines()
        .find(|l| l.starts_with("ERROR: "))
        .unwrap_or_default();
    assert!(
        error.starts_with("ERROR: onelaunch.start: no onelaunch binary: none configured, none on the agent's PATH")
            && error.contains("\"unreleased\"")
            && error.contains("set binary (or ONELAUNCH_BINARY)")
            && error.contains("use a released library version"),
        "{error}"
    );
    assert_eq!(
        install_steps(&build)[0]["stdout"].as_str().unwrap().trim(),
        "onelaunch-install: missing"
    );
    assert!(build.library_sh().is_empty());
    assert!(!build.output.contains("downloading"), "{}", build.output);
    assert_no_token(&build, &server, root.path());
}

/// A Windows agent (isUnix() false), recorded: this machine has neither
/// cmd.exe nor PowerShell, so the harness records `powershell` and `bat`
/// (answering the install script as an agent would: installed, then cached)
/// and runs nothing. Every step's PowerShell install script pins the Windows
/// asset's hash and exact URL, verifies with Get-FileHash and throws on a
/// mismatch; every CLI call goes through `bat` with the installed
/// onelaunch.exe, values only through the environment, the token only
/// through withCredentials.
#[test]
fn jenkins_windows_agent_installs_with_powershell_and_runs_the_cli_with_bat() {
    let Some(java_home) = require_groovy() else {
        return;
    };
    let release = LocalRelease::start("v9.9.9");
    let server = TestServer::start();
    let root = tempfile::tempdir().unwrap();
    let test_dir = library_copy(root.path(), Some(&release));
    let ws = workspace(root.path());
    std::fs::create_dir_all(ws.join("build/allure-results")).unwrap();
    std::fs::create_dir_all(ws.join("junit reports")).unwrap();
    let target = "x86_64-pc-windows-msvc";
    let tmp = r"C:\jenkins\workspace\shop@tmp";
    let exe = format!(r"{tmp}\onelaunch\v9.9.9\{target}\onelaunch.exe");
    let mut agent = installing_agent(&release.base_url, None);
    agent.extend([
        ("ONELAUNCH_TEST_AGENT", OsString::from("windows")),
        ("WORKSPACE_TMP", OsString::from(tmp)),
        (
            "ONELAUNCH_TEST_POWERSHELL_STDOUT",
            OsString::from(
                json!([
                    "onelaunch-install: installed\r\n",
                    "onelaunch-install: cached\r\n"
                ])
                .to_string(),
            ),
        ),
    ]);
    let build = run_agent_build(
        &server,
        &java_home,
        &ws,
        &test_dir,
        "windows.groovy",
        42,
        &json!([]),
        &agent,
    );
    assert_eq!(build.code, 0, "pipeline failed:\n{}", build.output);
    assert_only_allowed_steps(&build);
    assert!(
        !build.steps.iter().any(|s| s["step"] == "sh"),
        "sh on a Windows agent"
    );
    assert_eq!(
        build
            .output
            .matches(&format!("installed onelaunch v9.9.9 (SHA-256 verified against the library's onelaunch/checksums.json) as {exe}"))
            .count(),
        1,
        "{}",
        build.output
    );

    // upload, watch and finish each install (or reuse) with powershell.
    let installs = install_steps(&build);
    assert_eq!(installs.len(), 3, "{installs:#?}");
    let url = release.asset_url(target);
    let sha = release.sha256(target);
    for s in &installs {
        assert_eq!(s["step"], "powershell");
        let script = s["script"].as_str().unwrap();
        for needle in [
            format!("$url = '{url}'"),
            format!("$expected = '{sha}'"),
            format!("$dir = '{tmp}\\onelaunch\\v9.9.9\\{target}'"),
            "[Net.SecurityProtocolType]::Tls12".to_string(),
            "Invoke-WebRequest -UseBasicParsing -Uri $url -OutFile $zip".to_string(),
            "$actual = (Get-FileHash -Algorithm SHA256 -LiteralPath $zip).Hash.ToLowerInvariant()\n    if ($actual -ne $expected) {\n      throw ('checksum mismatch for ' + $asset".to_string(),
            "Expand-Archive -LiteralPath $zip".to_string(),
            "Get-Command -Name 'onelaunch.exe' -CommandType Application".to_string(),
        ] {
            assert!(script.contains(&needle), "{needle} not in:\n{script}");
        }
        // The hash comparison comes before the archive is unpacked or moved.
        assert!(script.find("-ne $expected").unwrap() < script.find("Expand-Archive").unwrap());
        assert!(!script.contains(TOKEN));
        assert_eq!(s["credentialVariables"], json!([]));
        assert_eq!(s["env"], json!({}), "the install script is self-contained");
    }

    // The CLI calls: bat with the installed onelaunch.exe.
    let bats: Vec<&Value> = build.steps.iter().filter(|s| s["step"] == "bat").collect();
    assert_eq!(bats.len(), 4, "upload, watch, finish, gate: {bats:#?}");
    for s in &bats {
        let script = s["script"].as_str().unwrap();
        assert!(
            script.starts_with("@echo off\nsetlocal EnableDelayedExpansion\n"),
            "{script}"
        );
        assert!(script.contains("\"!ONELAUNCH_BINARY!\" "), "{script}");
        assert!(
            script.contains("exit /b !"),
            "exit code passed on: {script}"
        );
        for literal in [
            exe.as_str(),
            server.url.as_str(),
            "allure-results",
            "gradlew",
            TOKEN,
        ] {
            assert!(!script.contains(literal), "{literal} in: {script}");
        }
        assert_eq!(s["env"]["ONELAUNCH_BINARY"], exe.as_str(), "{s}");
        assert_eq!(s["env"]["ALLURE_ENDPOINT"], server.url.as_str(), "{s}");
        assert_eq!(s["env"]["ALLURE_LAUNCH_ID"], "7", "{s}");
        assert_eq!(s["credentialVariables"], json!(["ALLURE_TOKEN"]), "{s}");
        assert_eq!(s["returnStatus"], true, "{s}");
    }
    let upload = bats[0];
    assert!(upload["script"].as_str().unwrap().contains(
        "\"!ONELAUNCH_BINARY!\" upload !ONELAUNCH_ALLOW_EMPTY_FLAG! \"!ONELAUNCH_RESULT_1!\" \"!ONELAUNCH_RESULT_2!\"\n"
    ));
    assert_eq!(upload["env"]["ONELAUNCH_RESULT_1"], "build/allure-results");
    assert_eq!(upload["env"]["ONELAUNCH_RESULT_2"], "junit reports");
    assert_eq!(upload["env"]["ONELAUNCH_ALLOW_EMPTY_FLAG"], "--allow-empty");
    let watch = bats[1];
    assert!(watch["script"]
        .as_str()
        .unwrap()
        .contains("watch --results \"!ONELAUNCH_RESULTS!\" !ONELAUNCH_ALLOW_EMPTY_FLAG! -- cmd /d /c \"!ONELAUNCH_COMMAND_FILE!\""));
    let command_file = ws.join(watch["env"]["ONELAUNCH_COMMAND_FILE"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(&command_file).unwrap(),
        "@echo off\r\ngradlew.bat test --tests \"shop & co\"\r\n",
        "the watched command, as a batch file"
    );
    let finish = bats[2];
    assert_eq!(finish["env"]["ONELAUNCH_STATUS"], "passed");
    assert!(finish["script"]
        .as_str()
        .unwrap()
        .contains("job-run stop --status \"!ONELAUNCH_STATUS!\""));
    assert_eq!(bats[3]["env"]["ONELAUNCH_GATE_ARGS"], "--max-failures 0");

    // Recorded only: nothing was downloaded or sent.
    assert_eq!(release.requests(), "");
    assert!(server.api().launches(1).is_empty());
    assert_no_token(&build, &server, root.path());
}
