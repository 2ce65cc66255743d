//! allurectl drop-in: every line of `tests/fixtures/allurectl/command-lines.txt`
//! (real allurectl command lines from public CI files, sources cited there)
//! runs against the real server with `allurectl` replaced by `onelaunch`, in
//! one GitHub Actions job's environment. None exits with a usage error (2);
//! every one succeeds, and the lines onelaunch implements have their effect:
//! results land in the launch, `ci env` and `auth login` answer, `launch
//! delete` deletes, `--silent` prints nothing on stderr, and the flags
//! onelaunch has no equivalent for get their one-line notice.

use crate::support::*;

/// The corpus: (source, command line), in file order.
fn corpus() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(fixture("tests/fixtures/allurectl/command-lines.txt")).unwrap();
    let mut source = String::new();
    let mut lines = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix("# source:") {
            source = s.trim().to_string();
        } else if !line.is_empty() && !line.starts_with('#') {
            assert!(!source.is_empty(), "a line without a source: {line}");
            lines.push((source.clone(), line.to_string()));
        }
    }
    lines
}

/// The line as bash runs it: onelaunch for allurectl, a command writing the
/// fixture's results for `<tests>`.
fn as_script(line: &str) -> String {
    let line =
        line.replacen("./allurectl ", "onelaunch ", 1)
            .replacen("allurectl ", "onelaunch ", 1);
    line.replace(
        "<tests>",
        "bash -c 'mkdir -p \"$ALLURE_RESULTS\" && cp -r \"$FIXTURE_RESULTS\"/. \"$ALLURE_RESULTS\"/'",
    )
}

#[test]
fn real_allurectl_command_lines_run_without_usage_errors() {
    let server = TestServer::start();
    let api = server.api();
    let work = tempfile::tempdir().unwrap();
    let results = fixture("tests/fixtures/allure-pytest");
    let base = server.cli();
    let launch = base
        .run(&[
            "launch",
            "create",
            "--launch-name",
            "shared",
            "--format",
            "ID",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let doomed = base
        .run(&[
            "launch",
            "create",
            "--launch-name",
            "doomed",
            "--format",
            "ID",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let token = base.env["ALLURE_TOKEN"].clone();
    let mut cli = base.github("777001", "tests").envs(&[
        ("ALLURE_PROJECT_ID", "1"),
        ("ALLURE_LAUNCH_NAME", "nightly"),
        ("ALLURE_RESULTS", "allure-results"),
        ("ALLURE_RESULT_DIR", "allure-results"),
        ("ALLURE_JOB_UID", "acme/shop/actions/workflows/ci.yml"),
        ("ALLURE_JOB_RUN_UID", "777001"),
        ("JOB_RUN_BRANCH", "main"),
        ("INPUT_ALLURE_RESULTS", "allure-results"),
        ("INPUT_PROJECT_ID", "1"),
        ("INPUT_JOB_NAME", "ui-tests"),
        ("INPUT_LAUNCH_NAME", "ui-run"),
        ("INPUT_JOB_RUN_UID", "42"),
        ("RAND_NUM", "31337"),
        ("LAUNCH_ID", &launch),
        ("DELETE_ID", &doomed),
    ]);
    cli = cli
        .env("INPUT_ALLURE_EE_ENDPOINT", &server.url)
        .env("INPUT_ALLURE_EE_TOKEN", &token)
        .env("FIXTURE_RESULTS", results.display());
    cli.cwd = Some(work.path().to_path_buf());
    copy_dir(&results, &work.path().join("allure-results"));

    let lines = corpus();
    assert!(lines.len() >= 25, "the corpus has {} lines", lines.len());
    let mut failures = Vec::new();
    for (source, line) in &lines {
        let run = cli.bash(&as_script(line));
        if run.code != 0 {
            failures.push(format!(
                "{line}\n  ({source}) exit {}:\n{}",
                run.code,
                run.all()
            ));
            continue;
        }
        check_effect(line, &run, &api, &doomed);
    }
    assert!(
        failures.is_empty(),
        "failed lines:\n{}",
        failures.join("\n")
    );
    // The `watch` and `upload` lines of this GitHub job filled the launch of
    // its job run (`job-run start --launch-name "$ALLURE_LAUNCH_NAME"`).
    let nightly = api
        .launches(1)
        .into_iter()
        .find(|l| l["name"] == "nightly" && !api.job_runs(l["id"].as_i64().unwrap()).is_empty())
        .unwrap_or_else(|| {
            let all: Vec<_> = api
                .launches(1)
                .iter()
                .map(|l| {
                    (
                        l["id"].clone(),
                        l["name"].clone(),
                        api.statistic(l["id"].as_i64().unwrap()),
                    )
                })
                .collect();
            panic!("no launch of the job run: {all:?}")
        });
    let id = nightly["id"].as_i64().unwrap();
    assert!(
        api.statistic(id).values().sum::<i64>() > 0,
        "no results in launch {id}"
    );
    assert_eq!(
        api.job_runs(id).len(),
        1,
        "one job run: {:?}",
        api.job_runs(id)
    );
    // `job-run plan --output-file ./testplan.json` wrote the plan.
    assert!(work.path().join("testplan.json").exists());
}

/// What a line implemented by onelaunch must have done.
fn check_effect(line: &str, run: &Run, api: &Api, doomed: &str) {
    let notice = |flag: &str| {
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with("note: ") && l.contains(flag)),
            "{line}: no notice for {flag}:\n{}",
            run.stderr
        )
    };
    if line.contains("auth login") {
        assert!(run.stdout.contains("Successfully authorized"), "{line}");
    }
    if line.contains("ci env") || line.contains("job-run env") {
        let vars = parse_env(&run.stdout);
        assert!(
            vars.contains_key("ALLURE_LAUNCH_ID"),
            "{line}: {}",
            run.stdout
        );
    }
    if line.contains("launch delete") {
        let (status, _) = api.get_raw(&format!("/api/launch/{doomed}"));
        assert_eq!(status, 404, "{line}: the launch is still there");
    }
    if line.contains("--silent") {
        assert_eq!(run.stderr, "", "{line}");
        assert!(run.stdout.contains("shared"), "{line}: {}", run.stdout);
    }
    if line.contains("launch create -o json") {
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert!(v[0]["id"].as_i64().is_some(), "{line}");
    }
    for flag in [
        "--timeout",
        "--ignore-passed-test-attachments",
        "--skip-too-big",
    ] {
        if line.split(' ').any(|w| w == flag) {
            notice(flag);
        }
    }
}

#[test]
fn continue_on_error_keeps_the_test_command_exit_code() {
    // The endpoint does not answer: without the flag, watch spools and says
    // so (exit 8); with it, the exit code is the test command's.
    let cli = Cli::new("http://127.0.0.1:9", "compat-token-0123456789");
    let work = tempfile::tempdir().unwrap();
    let mut cli = cli.env("ALLURE_RESULTS", "out");
    cli.cwd = Some(work.path().to_path_buf());
    let script = "onelaunch --http-timeout 1s watch --continue-on-error -- bash -c 'exit 0'";
    let run = cli.bash(script);
    assert_eq!(run.code, 0, "{}", run.all());
    let run = cli.bash("onelaunch --http-timeout 1s watch -- bash -c 'exit 0'");
    assert_ne!(run.code, 0, "{}", run.all());
}
