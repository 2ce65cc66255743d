//! The GitLab CI template (`plugins/gitlab/templates/onelaunch.yml`) on its
//! real local runner: gitlab-ci-local 4.50.0 with the shell executor, against
//! a real server. Pipelines live in `tests/ci/gitlab/`; each test copies one
//! of them, the template and the result files into a temporary git
//! repository that includes the template with `include: local:` and inputs.
//!
//! Where gitlab-ci-local differs from GitLab, the tests compensate:
//! - it parses dotenv reports leniently (npm `dotenv`), so the dotenv file
//!   the binary wrote is checked here with GitLab's strict rules
//!   ([`strict_dotenv`]);
//! - with `--shell-isolation` it copies the tracked files into the job
//!   directory again (rsync `--delete`) before `after_script`, deleting the
//!   results the script wrote, while GitLab runs `after_script` in the job's
//!   working directory; so the pipelines run without isolation (every job
//!   works in the repository directory, as on one shell runner);
//! - `trigger:` jobs are no-ops, so the parent-child and multi-project
//!   examples are only parsed (`--list`), and the other-project flow runs as
//!   its own pipeline that gets `ALLURE_LAUNCH_ID` as a pipeline variable
//!   (`--variable`);
//! - 4.50.0 has no `--force-shell-executor`: a job with `image:` would need
//!   Docker. The start and finish jobs run in the `image` input, so the
//!   copies of the template that run have that input's default emptied
//!   ([`shell_only`]: gitlab-ci-local runs a job whose image is empty in the
//!   shell) and run without gitlab-ci-local's JSON schema check, which, like
//!   GitLab, refuses an empty image; the examples are parsed with the
//!   unmodified template and that check.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::release_server::{host_target, LocalRelease};
use crate::support::*;

const TEMPLATE: &str = "plugins/gitlab/templates/onelaunch.yml";
/// How the examples include the component; the tests swap it for [`LOCAL_INCLUDE`].
const COMPONENT_INCLUDE: &str = "component: $CI_SERVER_FQDN/tools/onelaunch/onelaunch@~latest";
const LOCAL_INCLUDE: &str = "local: plugins/gitlab/templates/onelaunch.yml";
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
const INSTALLER: &str = "scripts/tools/gitlab-ci-local.sh";

// ------------------------------------------------------------------ runner

fn host_path() -> String {
    std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&host_path())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// gitlab-ci-local (it also needs rsync), or `None` after a loud skip notice.
/// Panics instead when `ONELAUNCH_REQUIRE_RUNNERS=1`.
fn runner() -> Option<PathBuf> {
    let gcl = find_on_path("gitlab-ci-local").filter(|p| {
        Command::new(p)
            .arg("--version")
            .env_clear()
            .env("PATH", host_path())
            .output()
            .is_ok_and(|o| o.status.success())
    });
    match (gcl, find_on_path("rsync")) {
        (Some(gcl), Some(_)) => Some(gcl),
        _ => {
            let msg = format!("gitlab-ci-local (with rsync) not installed; run {INSTALLER}");
            if std::env::var("ONELAUNCH_REQUIRE_RUNNERS").as_deref() == Ok("1") {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: {msg}");
            None
        }
    }
}

// ------------------------------------------------------------------ project

/// A temporary git repository (`repo/`) with the template, a HOME whose
/// `.gitlab-ci-local/variables.yml` plays the project's CI/CD variables, and
/// a TMPDIR for the jobs.
struct Project {
    root: tempfile::TempDir,
}

impl Project {
    fn new(server: Option<&TestServer>) -> Project {
        let p = Project {
            root: tempfile::tempdir().expect("tempdir"),
        };
        p.write(TEMPLATE, &shell_only(&read(&fixture(TEMPLATE))));
        fs::create_dir_all(p.home().join(".gitlab-ci-local")).unwrap();
        fs::create_dir_all(p.tmp()).unwrap();
        if let Some(server) = server {
            fs::write(
                p.variables_file(),
                format!(
                    "global:\n  ALLURE_ENDPOINT: \"{}\"\n  ALLURE_TOKEN: \"{TOKEN}\"\n  ALLURE_PROJECT_ID: \"1\"\n",
                    server.url
                ),
            )
            .unwrap();
        }
        p
    }

    fn repo(&self) -> PathBuf {
        self.root.path().join("repo")
    }

    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    fn tmp(&self) -> PathBuf {
        self.root.path().join("tmp")
    }

    /// The CI/CD variables: the one file that holds the token by design.
    fn variables_file(&self) -> PathBuf {
        self.home().join(".gitlab-ci-local/variables.yml")
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.repo().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn add_files(&self, rel: &str, from: &Path) {
        copy_dir(from, &self.repo().join(rel));
    }

    fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.repo())
            .env_clear()
            .env("PATH", host_path())
            .env("HOME", self.home())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `git init` + commit, with the origin remote gitlab-ci-local derives
    /// CI_PROJECT_* from.
    fn commit(&self) {
        self.git(&["-c", "init.defaultBranch=main", "init", "-q"]);
        self.git(&["config", "user.name", "CI"]);
        self.git(&["config", "user.email", "ci@example.com"]);
        self.git(&["config", "commit.gpgsign", "false"]);
        self.git(&[
            "remote",
            "add",
            "origin",
            "https://gitlab.example.com/acme/api-tests.git",
        ]);
        self.git(&[
            "symbolic-ref",
            "refs/remotes/origin/HEAD",
            "refs/remotes/origin/main",
        ]);
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "CI pipeline"]);
    }

    /// Runs gitlab-ci-local (shell executor) in the repository with a scrubbed
    /// environment: PATH, HOME (the CI/CD variables) and TMPDIR only. Without
    /// its JSON schema check, which refuses the empty image of [`shell_only`]
    /// ([`Project::run_validated`] keeps it).
    fn run(&self, gcl: &Path, args: &[&str]) -> Run {
        let mut all = vec!["--no-json-schema-validation"];
        all.extend_from_slice(args);
        self.run_validated(gcl, &all)
    }

    /// [`Project::run`] with gitlab-ci-local's check of the configuration
    /// against GitLab's JSON schema.
    fn run_validated(&self, gcl: &Path, args: &[&str]) -> Run {
        self.run_in(gcl, args, &host_path())
    }

    /// [`Project::run`] with `path` as the jobs' PATH.
    fn run_with_path(&self, gcl: &Path, args: &[&str], path: &str) -> Run {
        let mut all = vec!["--no-json-schema-validation"];
        all.extend_from_slice(args);
        self.run_in(gcl, &all, path)
    }

    fn run_in(&self, gcl: &Path, args: &[&str], path: &str) -> Run {
        let stdout = self.root.path().join("gitlab-ci-local.stdout");
        let stderr = self.root.path().join("gitlab-ci-local.stderr");
        let mut child = Command::new(gcl)
            .arg("--shell-executor-no-image")
            .args(args)
            .current_dir(self.repo())
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.home())
            .env("TMPDIR", self.tmp())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn gitlab-ci-local");
        let deadline = Instant::now() + RUN_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for gitlab-ci-local") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "gitlab-ci-local did not finish within {RUN_TIMEOUT:?}:\n{}",
                    fs::read_to_string(&stdout).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: fs::read_to_string(&stdout).unwrap_or_default(),
            stderr: fs::read_to_string(&stderr).unwrap_or_default(),
        }
    }

    /// Every dotenv report named `name` in the repository: the file the job
    /// wrote and gitlab-ci-local's artifact copy of it.
    fn dotenv_files(&self, name: &str) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = files_under(&self.repo())
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == name))
            .filter(|p| !p.components().any(|c| c.as_os_str() == ".git"))
            .collect();
        found.sort();
        found
    }
}

/// The template with its `image` input's default emptied, so that
/// gitlab-ci-local runs the start and finish jobs in the shell (see the module
/// comment).
fn shell_only(template: &str) -> String {
    let mut n = 0;
    let out: String = template
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("default:") && l.ends_with("# pinned: image") {
                n += 1;
                "      default: \"\" # the shell of gitlab-ci-local".to_string()
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert_eq!(n, 1, "the template has no pinned image default");
    out
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Regular files under `dir`, recursively (symbolic links are not followed).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

/// Output lines of one job (gitlab-ci-local prefixes them with the job name).
fn job_lines<'a>(out: &'a str, job: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(job)).collect()
}

#[track_caller]
fn assert_job_result(out: &str, result: &str, job: &str) {
    let needle = format!(" {result}  {job}");
    assert!(
        out.lines().any(|l| l.starts_with(&needle)),
        "expected `{needle}` in the pipeline summary:\n{out}"
    );
}

/// The number in `Job Run uid [N]` that `onelaunch job-run start` printed.
fn job_run_uid(lines: &[&str]) -> String {
    lines
        .iter()
        .find_map(|l| l.split("Job Run uid [").nth(1))
        .and_then(|rest| rest.split(']').next())
        .expect("job-run start printed no job run uid")
        .to_string()
}

// ------------------------------------------------------------------ dotenv

/// GitLab's rules for an `artifacts:reports:dotenv` file
/// (doc/ci/variables/dotenv_variables.md): UTF-8, at most 5 KB, one
/// `NAME=value` per line, names of `[A-Za-z0-9_]`, no blank or comment lines,
/// no quotes (GitLab keeps them literally), no multi-line values, at most 20
/// variables (the self-managed default). Stricter than GitLab in two ways
/// that only catch sloppy writers: no duplicate names and no whitespace
/// around names or values (GitLab strips it).
fn strict_dotenv(bytes: &[u8]) -> Result<BTreeMap<String, String>, Vec<String>> {
    let mut errors = Vec::new();
    if bytes.len() > 5 * 1024 {
        errors.push(format!(
            "{} bytes; GitLab accepts at most 5120",
            bytes.len()
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return Err(vec![format!("not UTF-8: {e}")]),
    };
    if text.contains('\r') {
        errors.push("carriage return (multi-line value or CRLF line ends)".into());
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        errors.push("no variables".into());
    }
    let mut vars = BTreeMap::new();
    for (i, line) in body.split('\n').enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            errors.push(format!("line {n}: blank line"));
            continue;
        }
        if line.trim_start().starts_with('#') {
            errors.push(format!("line {n}: comment"));
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            errors.push(format!(
                "line {n}: no `=` (a multi-line value or stray text): {line:?}"
            ));
            continue;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            errors.push(format!("line {n}: invalid name {name:?}"));
        }
        if name != name.trim() || value != value.trim() {
            errors.push(format!("line {n}: whitespace around the name or value"));
        }
        if value.contains(['"', '\'', '`']) {
            errors.push(format!("line {n}: quotes (GitLab keeps them literally)"));
        }
        if vars.insert(name.to_string(), value.to_string()).is_some() {
            errors.push(format!("line {n}: duplicate name {name}"));
        }
    }
    if vars.len() > 20 {
        errors.push(format!(
            "{} variables; GitLab accepts at most 20",
            vars.len()
        ));
    }
    if errors.is_empty() {
        Ok(vars)
    } else {
        Err(errors)
    }
}

/// Validates every copy of the start job's dotenv report (all identical) and
/// returns its variables.
#[track_caller]
fn check_dotenv(project: &Project) -> BTreeMap<String, String> {
    let files = project.dotenv_files("onelaunch.env");
    // The file the start job wrote in the project directory, and
    // gitlab-ci-local's copy under .gitlab-ci-local/artifacts/onelaunch-start/.
    assert_eq!(files.len(), 2, "dotenv reports found: {files:?}");
    assert!(
        files.iter().any(|p| p.ends_with(
            ".gitlab-ci-local/artifacts/onelaunch-start/.gitlab-ci-reports/dotenv/onelaunch.env"
        )),
        "{files:?}"
    );
    let mut vars = None;
    for f in &files {
        let bytes = fs::read(f).unwrap();
        let parsed = strict_dotenv(&bytes).unwrap_or_else(|errors| {
            panic!(
                "{} breaks GitLab's dotenv rules: {errors:?}\n{}",
                f.display(),
                String::from_utf8_lossy(&bytes)
            )
        });
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "the token is in {}",
            f.display()
        );
        if let Some(prev) = &vars {
            assert_eq!(prev, &parsed, "{} differs", f.display());
        }
        vars = Some(parsed);
    }
    let vars = vars.unwrap();
    let keys: Vec<&str> = vars.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "ALLURE_ENDPOINT",
            "ALLURE_JOB_RUN_ID",
            "ALLURE_JOB_RUN_URL",
            "ALLURE_LAUNCH_ID",
            "ALLURE_LAUNCH_NAME",
            "ALLURE_LAUNCH_URL",
            "ALLURE_PROJECT_ID",
            "ONELAUNCH_LAUNCH_CREATED",
        ]
    );
    vars
}

// ------------------------------------------------------------------ leaks

/// The token appears in no runner or CLI output, no file the run left in the
/// temporary tree (job logs, artifacts, dotenv reports, results) except the
/// CI/CD variables file, and not in the server log.
#[track_caller]
fn assert_no_token(server: &TestServer, project: &Project, outputs: &[&Run]) {
    for o in outputs {
        assert!(!o.all().contains(TOKEN), "token leaked:\n{}", o.all());
    }
    assert!(
        !server.log().contains(TOKEN),
        "token leaked into the server log"
    );
    let needle = TOKEN.as_bytes();
    let files = files_under(project.root.path());
    let mut logs = 0;
    for f in &files {
        if *f == project.variables_file() {
            continue;
        }
        let bytes = fs::read(f).unwrap();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "token leaked into {}",
            f.display()
        );
        if f.starts_with(project.repo().join(".gitlab-ci-local/output")) {
            logs += 1;
        }
    }
    assert!(logs > 0, "no job logs under .gitlab-ci-local/output");
}

// ------------------------------------------------------------------ results

/// (fullName, status) of every test in an Allure results directory.
fn allure_tests(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().ends_with("-result.json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        out.push((
            v["fullName"].as_str().unwrap().to_string(),
            v["status"].as_str().unwrap().to_string(),
        ));
    }
    out
}

/// (fullName, status) of the five cases in examples/pipelines/gitlab-api.
fn junit_tests() -> Vec<(String, String)> {
    let xml = read(&fixture("examples/pipelines/gitlab-api/results/junit.xml"));
    let cases = [
        ("tests.api.test_orders", "test_create_order", "passed"),
        ("tests.api.test_orders", "test_get_order", "passed"),
        (
            "tests.api.test_orders",
            "test_cancel_shipped_order_is_rejected",
            "failed",
        ),
        ("tests.api.test_products", "test_list_products", "passed"),
        (
            "tests.api.test_products",
            "test_product_not_found",
            "passed",
        ),
    ];
    assert_eq!(xml.matches("<testcase ").count(), cases.len());
    cases
        .iter()
        .map(|(class, name, status)| {
            assert!(
                xml.contains(&format!("classname=\"{class}\" name=\"{name}\"")),
                "{name} is not in junit.xml"
            );
            (format!("{class}.{name}"), status.to_string())
        })
        .collect()
}

fn server_tests(results: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = results
        .iter()
        .map(|r| {
            (
                r["fullName"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn by_status(tests: &[(String, String)]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for (_, s) in tests {
        *m.entry(s.clone()).or_insert(0) += 1;
    }
    m
}

// ------------------------------------------------------------------ tests

#[test]
fn strict_dotenv_rejects_what_gitlab_rejects() {
    let ok = strict_dotenv(b"ALLURE_LAUNCH_ID=7\nALLURE_LAUNCH_NAME=Release 1.2\n").unwrap();
    assert_eq!(ok["ALLURE_LAUNCH_NAME"], "Release 1.2");
    let long = format!("A={}\n", "x".repeat(5200));
    let many: String = (0..21).map(|i| format!("V{i}=1\n")).collect();
    for bad in [
        "A=1\n\nB=2\n",
        "# ids\nA=1\n",
        "A=\"1\"\n",
        "A='1'\n",
        "A=line one\nline two\n",
        "A=1\r\n",
        "MY-VAR=1\n",
        "=1\n",
        "A<<EOF\n1\nEOF\n",
        "A=1\nA=2\n",
        " A=1\n",
        "",
        long.as_str(),
        many.as_str(),
    ] {
        assert!(strict_dotenv(bad.as_bytes()).is_err(), "accepted {bad:?}");
    }
}

/// The example shape: start -> two parallel:matrix shards (Allure results and
/// JUnit XML, one shard's tests failing) -> finish, all in one launch.
#[test]
fn gitlab_pipeline_start_matrix_shards_finish_share_one_launch() {
    let Some(gcl) = runner() else { return };
    let server = TestServer::start();
    let api = server.api();
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    let junit = fixture("examples/pipelines/gitlab-api/results");

    let project = Project::new(Some(&server));
    project.write(
        ".gitlab-ci.yml",
        &read(&fixture("tests/ci/gitlab/.gitlab-ci.yml")),
    );
    project.add_files("test-data/unit", &unit);
    project.add_files("test-data/api", &junit);
    project.commit();

    let started = Instant::now();
    let bin_var = format!("ONELAUNCH_BIN={}", bin().display());
    let run = project.run(&gcl, &["--variable", &bin_var]);
    eprintln!("gitlab-ci-local pipeline: {:?}", started.elapsed());
    let out = run.all();
    assert_eq!(run.code, 0, "gitlab-ci-local failed:\n{out}");
    assert_job_result(&out, "PASS", "onelaunch-start");
    assert_job_result(&out, "PASS", "tests: [api,");
    // The unit shard's tests fail (exit 42, an allowed failure).
    assert_job_result(&out, "WARN", "tests: [unit,");
    assert_job_result(&out, "PASS", "onelaunch-finish");

    // The ids of the start job's dotenv report, valid by GitLab's rules.
    let env = check_dotenv(&project);
    let launch_id: i64 = env["ALLURE_LAUNCH_ID"].parse().unwrap();
    let job_run_id: i64 = env["ALLURE_JOB_RUN_ID"].parse().unwrap();
    assert_eq!(env["ALLURE_ENDPOINT"], server.url);
    assert_eq!(env["ALLURE_PROJECT_ID"], "1");
    assert_eq!(env["ALLURE_LAUNCH_NAME"], "Release 1.2 validation");
    assert!(env["ALLURE_LAUNCH_URL"].ends_with(&format!("/launch/{launch_id}")));
    assert!(env["ALLURE_JOB_RUN_URL"].ends_with(&format!("/jobrun/{job_run_id}")));
    assert_eq!(env["ONELAUNCH_LAUNCH_CREATED"], "true");

    // Both shards got the ids and uploaded in after_script, the failing one
    // after its tests failed.
    let ids = format!("launch {launch_id}, job run {job_run_id}");
    let unit_lines = job_lines(&out, "tests: [unit,");
    let api_lines = job_lines(&out, "tests: [api,");
    for lines in [&unit_lines, &api_lines] {
        assert!(lines.iter().any(|l| l.ends_with(&ids)), "{lines:#?}");
    }
    let pos = |lines: &[&str], text: &str| {
        lines
            .iter()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("no `{text}` in {lines:#?}"))
    };
    assert!(
        pos(&unit_lines, "1 test failed") < pos(&unit_lines, "Running after script")
            && pos(&unit_lines, "Running after script")
                < pos(
                    &unit_lines,
                    "Uploaded 6 new results, 0 already present (failed 1, passed 5)"
                )
    );
    pos(
        &api_lines,
        "Uploaded 5 new results, 0 already present (failed 1, passed 4)",
    );
    let finish_lines = job_lines(&out, "onelaunch-finish");
    pos(&finish_lines, &format!("Job Run [{job_run_id}] stopped"));
    pos(&finish_lines, &format!("Launch [{launch_id}] closed"));

    // Exactly one launch, closed, named and tagged from the inputs.
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:#?}");
    let launch = &launches[0];
    assert_eq!(launch["id"], launch_id);
    assert_eq!(launch["closed"], true);
    assert_eq!(launch["name"], "Release 1.2 validation");
    let tags: Vec<&str> = launch["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["release", "gitlab"]);

    // Exactly the tests of both shards, with their statuses.
    let mut expected = allure_tests(&unit);
    expected.extend(junit_tests());
    expected.sort();
    let results = api.results(launch_id);
    assert_eq!(server_tests(&results), expected);
    assert_eq!(api.statistic(launch_id), by_status(&expected));
    let mut stat = expected_statistic(&[&unit]);
    *stat.entry("passed".into()).or_insert(0) += 4;
    *stat.entry("failed".into()).or_insert(0) += 1;
    assert_eq!(api.statistic(launch_id), stat);
    assert!(results.iter().all(|r| r["jobRunId"] == job_run_id));

    // One job run. gitlab-ci-local gives every job of a pipeline run the same
    // CI_PIPELINE_ID, and the CLI keys a GitLab job run by (CI_PROJECT_ID,
    // CI_PIPELINE_ID): the start job creates it, both shards upload into it
    // through ALLURE_JOB_RUN_ID from the dotenv report, the finish job stops it.
    let runs = api.job_runs(launch_id);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let jr = &runs[0];
    assert_eq!(jr["id"], job_run_id);
    assert_eq!(
        jr["externalId"],
        job_run_uid(&job_lines(&out, "onelaunch-start")).as_str()
    );
    assert_eq!(jr["job"]["type"], "gitlab");
    assert_eq!(jr["resultCount"].as_u64().unwrap() as usize, expected.len());
    assert_eq!(jr["stage"], "finished");
    assert_eq!(jr["status"], "failed", "two tests failed");

    assert_no_token(&server, &project, &[&run]);
}

/// Issue 13: a shard that ends long after the other keeps all its results.
/// tests/ci/gitlab/shards.yml: the start job creates the launch and job run;
/// two `parallel:matrix` legs (`.onelaunch-watch`) share that job run; the
/// finish job runs once the fast leg has ended (GitLab: `needs:` with the
/// fast leg's matrix values; gitlab-ci-local ignores that filter, so the
/// pipeline waits for the fast leg's marker instead), while the slow leg's
/// watch is still uploading. Its `launch close --wait` must wait for that
/// upload: every result of both legs ends up in the closed launch.
#[test]
fn gitlab_finish_needing_only_the_fast_shard_loses_no_result_of_the_slow_one() {
    let Some(gcl) = runner() else { return };
    let server = TestServer::start();
    let api = server.api();
    let project = Project::new(Some(&server));
    let shards = crate::wrapper_shards::Shards::new(&project.root.path().join("shards"));
    project.write(
        ".gitlab-ci.yml",
        &read(&fixture("tests/ci/gitlab/shards.yml")),
    );
    project.commit();
    let bin_var = format!("ONELAUNCH_BIN={}", bin().display());
    let shards_var = format!("ONELAUNCH_TEST_SHARDS={}", shards.dir.display());
    let watcher = shards.watch(&api);
    let run = project.run(&gcl, &["--variable", &bin_var, "--variable", &shards_var]);
    let saw_slow_upload = watcher.done();
    let out = run.all();
    assert!(
        saw_slow_upload && shards.finish_started(),
        "the finish did not run while the slow shard uploaded:\n{out}"
    );
    // The slow leg's watch and the finish job (job-run stop, launch close
    // --wait) exited 0.
    assert_eq!(run.code, 0, "gitlab-ci-local failed:\n{out}");
    assert_job_result(&out, "PASS", "onelaunch-start");
    assert_job_result(&out, "PASS", "shard: [fast]");
    assert_job_result(&out, "PASS", "shard: [slow]");
    assert_job_result(&out, "PASS", "onelaunch-finish");
    let finish_lines = job_lines(&out, "onelaunch-finish");
    assert!(
        finish_lines.iter().any(|l| l.contains("] closed")),
        "{finish_lines:#?}"
    );
    crate::wrapper_shards::assert_every_result_in_the_closed_launch(&api, &out);
    assert_no_token(&server, &project, &[&run]);
}

/// examples/gitlab/other-project.yml: a second project joins the launch of an
/// upstream pipeline through ALLURE_LAUNCH_ID, reports as its own job run and
/// leaves the launch open for the upstream pipeline to close.
#[test]
fn gitlab_other_project_joins_the_launch_and_leaves_it_open() {
    let Some(gcl) = runner() else { return };
    let server = TestServer::start();
    let api = server.api();
    let junit = fixture("examples/pipelines/gitlab-api/results");
    let mut outputs = Vec::new();

    // The upstream pipeline (another project, pipeline 555) started the launch.
    let upstream = server.cli().gitlab("555");
    outputs.push(
        upstream
            .run(&["job-run", "start", "--launch-name", "Release 2.0"])
            .ok(),
    );
    let env_run = upstream.run(&["job-run", "env"]).ok();
    let upstream_env = parse_env(&env_run.stdout);
    outputs.push(env_run);
    let launch_id: i64 = upstream_env["ALLURE_LAUNCH_ID"].parse().unwrap();
    let upstream_run: i64 = upstream_env["ALLURE_JOB_RUN_ID"].parse().unwrap();

    let project = Project::new(Some(&server));
    project.write(
        ".gitlab-ci.yml",
        &read(&fixture("tests/ci/gitlab/other-project.yml")),
    );
    project.add_files("test-data/api", &junit);
    project.commit();
    let bin_var = format!("ONELAUNCH_BIN={}", bin().display());
    let launch_var = format!("ALLURE_LAUNCH_ID={launch_id}");
    let run = project.run(&gcl, &["--variable", &bin_var, "--variable", &launch_var]);
    let out = run.all();
    assert_eq!(run.code, 0, "gitlab-ci-local failed:\n{out}");
    for job in ["onelaunch-start", "contract-tests", "onelaunch-finish"] {
        assert_job_result(&out, "PASS", job);
    }

    let env = check_dotenv(&project);
    assert_eq!(env["ALLURE_LAUNCH_ID"], launch_id.to_string());
    assert_eq!(env["ONELAUNCH_LAUNCH_CREATED"], "false");
    let own_run: i64 = env["ALLURE_JOB_RUN_ID"].parse().unwrap();
    assert_ne!(own_run, upstream_run);
    let finish_lines = job_lines(&out, "onelaunch-finish");
    assert!(
        finish_lines
            .iter()
            .any(|l| l.contains(&format!("launch {launch_id} left open"))),
        "{finish_lines:#?}"
    );

    // Still one launch, open; two job runs: upstream's and this project's.
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:#?}");
    assert_eq!(launches[0]["id"], launch_id);
    assert_eq!(launches[0]["closed"], false);
    let runs = api.job_runs(launch_id);
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let by_id: BTreeMap<i64, &Value> = runs
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r))
        .collect();
    assert_eq!(by_id[&upstream_run]["externalId"], "555");
    assert_eq!(by_id[&upstream_run]["resultCount"], 0);
    let own = by_id[&own_run];
    assert_eq!(
        own["externalId"],
        job_run_uid(&job_lines(&out, "onelaunch-start")).as_str()
    );
    assert_eq!(own["job"]["type"], "gitlab");
    assert_eq!(own["resultCount"], 5);
    assert_eq!(own["stage"], "finished");

    let expected = {
        let mut t = junit_tests();
        t.sort();
        t
    };
    let results = api.results(launch_id);
    assert_eq!(server_tests(&results), expected);
    assert!(results.iter().all(|r| r["jobRunId"] == own_run));
    assert_eq!(api.statistic(launch_id), by_status(&expected));

    // The upstream pipeline's finish closes the launch.
    let finish = upstream.clone().env("ALLURE_JOB_RUN_ID", upstream_run);
    outputs.push(finish.run(&["job-run", "stop"]).ok());
    outputs.push(
        finish
            .run(&["launch", "close", &launch_id.to_string()])
            .ok(),
    );
    assert_eq!(api.launches(1)[0]["closed"], true);

    outputs.push(run);
    assert_no_token(&server, &project, &outputs.iter().collect::<Vec<_>>());
}

/// A test job retried in the same pipeline (gitlab-ci-local runs a single job
/// again with the same CI_PIPELINE_ID and a new CI_JOB_ID, as GitLab's retry
/// does): the retry reports into the same job run, its JUnit results become
/// retries of the first try's (same file name, no timestamps), the retry
/// decides the statuses, and the first try stays visible.
#[test]
fn gitlab_retried_job_adds_its_junit_results_as_retries() {
    let Some(gcl) = runner() else { return };
    let server = TestServer::start();
    let api = server.api();
    let project = Project::new(Some(&server));
    project.write(
        ".gitlab-ci.yml",
        &read(&fixture("tests/ci/gitlab/retry.yml")),
    );
    let case = |name: &str, fail: bool| {
        let outcome = if fail {
            r#"<failure message="boom">trace</failure>"#
        } else {
            ""
        };
        format!(r#"<testcase classname="api.Orders" name="{name}" time="0.1">{outcome}</testcase>"#)
    };
    for (try_no, fail) in [(1, true), (2, false)] {
        project.write(
            &format!("test-data/try-{try_no}/TEST-api.xml"),
            &format!(
                r#"<testsuite name="api" tests="3">{}{}{}</testsuite>"#,
                case("case_0", fail),
                case("case_1", false),
                case("case_2", fail)
            ),
        );
    }
    project.write("test-data/next-try", "1\n");
    project.commit();
    let bin_var = format!("ONELAUNCH_BIN={}", bin().display());

    // First try: start, then the test job fails (its results still upload).
    let first = project.run(
        &gcl,
        &["--variable", &bin_var, "onelaunch-start", "api-tests"],
    );
    let out = first.all();
    assert_job_result(&out, "PASS", "onelaunch-start");
    assert_job_result(&out, "FAIL", "api-tests");
    assert!(
        out.contains("Uploaded 3 new results, 0 already present (failed 2, passed 1)"),
        "{out}"
    );
    let env = check_dotenv(&project);
    let launch_id: i64 = env["ALLURE_LAUNCH_ID"].parse().unwrap();
    let job_run_id: i64 = env["ALLURE_JOB_RUN_ID"].parse().unwrap();
    let job_id = |out: &str| -> (String, String) {
        let line = job_lines(out, "api-tests")
            .into_iter()
            .find(|l| l.contains("> job ") && l.contains(" of pipeline "))
            .unwrap_or_else(|| panic!("no job id line:\n{out}"))
            .to_string();
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "job").unwrap();
        (
            words[at + 1].to_string(),
            words[at + 4].trim_end_matches(',').to_string(),
        )
    };
    let (first_job, first_pipeline) = job_id(&out);

    // The retry: same pipeline, new job id, the tests pass this time.
    project.write("test-data/next-try", "2\n");
    let retry = project.run(&gcl, &["--variable", &bin_var, "api-tests"]);
    let out = retry.all();
    assert_job_result(&out, "PASS", "api-tests");
    assert!(
        out.contains("Uploaded 3 new results, 0 already present (passed 3)"),
        "{out}"
    );
    let (retry_job, retry_pipeline) = job_id(&out);
    assert_eq!(
        retry_pipeline, first_pipeline,
        "a retry stays in its pipeline"
    );
    assert_ne!(retry_job, first_job, "a retry is a new job");

    let finish = project.run(&gcl, &["--variable", &bin_var, "onelaunch-finish"]);
    assert_job_result(&finish.all(), "PASS", "onelaunch-finish");

    // One launch, one job run, six results: three tests, two tries each.
    assert_eq!(api.launches(1).len(), 1);
    let runs = api.job_runs(launch_id);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["id"], job_run_id);
    assert_eq!(runs[0]["resultCount"], 6);
    assert_eq!(runs[0]["status"], "passed", "the retry decides");
    let results = api.results(launch_id);
    assert_eq!(
        results.len(),
        6,
        "no try's results were dropped: {results:#?}"
    );
    let mut by_test: BTreeMap<String, Vec<(bool, String)>> = BTreeMap::new();
    for r in &results {
        by_test
            .entry(r["fullName"].as_str().unwrap().to_string())
            .or_default()
            .push((
                r["retry"].as_bool().unwrap(),
                r["status"].as_str().unwrap().to_string(),
            ));
    }
    assert_eq!(by_test.len(), 3, "{by_test:#?}");
    for (test, tries) in &by_test {
        let latest: Vec<_> = tries.iter().filter(|(retry, _)| !retry).collect();
        assert_eq!(tries.len(), 2, "{test}: {tries:?}");
        assert_eq!(latest.len(), 1, "{test}: {tries:?}");
        assert_eq!(latest[0].1, "passed", "{test}: the retry decides");
    }
    assert_eq!(
        by_test["api.Orders.case_0"]
            .iter()
            .find(|(retry, _)| *retry)
            .map(|(_, s)| s.as_str()),
        Some("failed"),
        "the first try stays visible"
    );
    assert_eq!(
        api.statistic(launch_id),
        BTreeMap::from([("passed".to_string(), 3)])
    );

    assert_no_token(&server, &project, &[&first, &retry, &finish]);
}

/// The CA of a local release for curl/wget in the jobs, as pipeline variables.
fn ca_vars(release: &LocalRelease) -> Vec<String> {
    vec![
        "--variable".into(),
        format!("SSL_CERT_FILE={}", release.ca_file.display()),
        "--variable".into(),
        format!("CURL_CA_BUNDLE={}", release.ca_file.display()),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn sha256_of(path: &Path) -> String {
    let o = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    let text = String::from_utf8(o.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_string()
}

/// The download-url + sha256 override (one custom asset): without
/// ONELAUNCH_BIN the template downloads it over https and runs it only when
/// its SHA-256 matches; a wrong or missing checksum is refused.
#[test]
fn gitlab_template_installs_only_a_verified_binary() {
    let Some(gcl) = runner() else { return };
    let server = TestServer::start();
    let release = LocalRelease::start("v9.9.9");
    let project = Project::new(Some(&server));
    let url = release.asset_url(host_target());
    let sha = release.sha256(host_target());

    project.write(
        ".gitlab-ci.yml",
        &read(&fixture("tests/ci/gitlab/install.yml"))
            .replace("@ASSET_URL@", &url)
            .replace("@ASSET_SHA256@", &sha),
    );
    project.commit();
    let run = project.run(&gcl, &args(&ca_vars(&release)));
    let out = run.all();
    assert_eq!(run.code, 0, "gitlab-ci-local failed:\n{out}");
    assert_job_result(&out, "PASS", "install-verified");
    assert_job_result(&out, "WARN", "install-tampered");
    assert_job_result(&out, "WARN", "install-unverified");

    let version = format!("onelaunch {}", env!("CARGO_PKG_VERSION"));
    let verified = job_lines(&out, "install-verified");
    for text in [
        format!("onelaunch: installed {url} (sha256 {sha})"),
        version.clone(),
        "ID\tSTATE\tNAME".to_string(),
    ] {
        assert!(
            verified.iter().any(|l| l.contains(&text)),
            "no `{text}` in {verified:#?}"
        );
    }
    let tampered = job_lines(&out, "install-tampered");
    assert!(
        tampered.iter().any(|l| l.contains(&format!(
            "SHA-256 mismatch for {url}: expected {} (the sha256 input (ONELAUNCH_SHA256)), got {sha}; refusing to install it",
            "0".repeat(64)
        ))),
        "{tampered:#?}"
    );
    let unverified = job_lines(&out, "install-unverified");
    assert!(
        unverified
            .iter()
            .any(|l| l.contains(&format!("refusing to install {url} without its SHA-256"))),
        "{unverified:#?}"
    );
    for lines in [&tampered, &unverified] {
        assert!(
            !lines
                .iter()
                .any(|l| l.contains(&version) || l.contains("ran an unverified binary")),
            "an unverified binary ran: {lines:#?}"
        );
    }
    // Two downloads (verified, tampered); the unverified job refused first.
    assert_eq!(
        release.downloads(host_target()),
        2,
        "{}",
        release.requests()
    );
    // The downloads lived in per-job temporary directories, removed when
    // each job's shell exited.
    assert_eq!(fs::read_dir(project.tmp()).unwrap().count(), 0);

    assert_no_token(&server, &project, &[&run]);
}

/// A project whose template is the committed one pinned to a local release
/// by the release's own scripts (`scripts/release/pin`), with `release-url`
/// pointing at that release. Returns the pinned template text.
fn pinned_project(
    server: &TestServer,
    release: &LocalRelease,
    pipeline: &str,
) -> (Project, String) {
    let project = Project::new(Some(server));
    project.write(TEMPLATE, &read(&fixture(TEMPLATE)));
    release.pin_into(&project.repo());
    let pinned = read(&project.repo().join(TEMPLATE));
    project.write(TEMPLATE, &shell_only(&pinned));
    project.write(
        ".gitlab-ci.yml",
        &pipeline.replace("@RELEASE_URL@", &release.base_url),
    );
    project.add_files(
        "test-data/unit",
        &fixture("examples/pipelines/github-unit/allure-results"),
    );
    project.commit();
    (project, pinned)
}

const PINNED_PIPELINE: &str = r#"include:
  - local: plugins/gitlab/templates/onelaunch.yml
    inputs:
      release-url: "@RELEASE_URL@"
      launch-name: Pinned release

stages:
  - test

onelaunch-start:
  extends: .onelaunch-start

tests:
  extends: .onelaunch-upload
  stage: test
  script:
    - mkdir -p "$ALLURE_RESULTS"
    - cp test-data/unit/* "$ALLURE_RESULTS/"

onelaunch-finish:
  extends: .onelaunch-finish
"#;

/// The template pinned to a release (version, per-architecture SHA-256) and
/// no ONELAUNCH_BIN: start, the test job and finish each download the asset
/// of this machine's architecture from `release-url` over https (the test CA
/// through SSL_CERT_FILE / CURL_CA_BUNDLE), verify it against the pinned hash
/// and run it; the results land in the launch.
#[test]
fn gitlab_pinned_template_installs_the_release_asset_of_the_runner_arch_in_every_job() {
    let Some(gcl) = runner() else { return };
    let server = TestServer::start();
    let api = server.api();
    let release = LocalRelease::start("v9.9.9");
    let (project, pinned) = pinned_project(&server, &release, PINNED_PIPELINE);
    let target = host_target();
    let other = if target.starts_with("x86_64") {
        "aarch64-unknown-linux-musl"
    } else {
        "x86_64-unknown-linux-musl"
    };
    // What the pin wrote: the version and both architectures' hashes.
    assert!(pinned.contains("      default: \"v9.9.9\" # pinned: version\n"));
    for t in [target, other] {
        assert!(
            pinned.contains(&format!(
                "      default: \"{}\" # pinned: {t}\n",
                release.sha256(t)
            )),
            "{t} not pinned:\n{pinned}"
        );
    }

    let run = project.run(&gcl, &args(&ca_vars(&release)));
    let out = run.all();
    assert_eq!(run.code, 0, "gitlab-ci-local failed:\n{out}");
    let url = release.asset_url(target);
    let sha = release.sha256(target);
    let version = format!("onelaunch {}", env!("CARGO_PKG_VERSION"));
    for job in ["onelaunch-start", "tests", "onelaunch-finish"] {
        assert_job_result(&out, "PASS", job);
        let lines = job_lines(&out, job);
        for text in [
            format!("onelaunch: downloading {url}"),
            format!("onelaunch: installed {url} (sha256 {sha})"),
            version.clone(),
        ] {
            assert!(
                lines.iter().any(|l| l.contains(&text)),
                "{job}: no `{text}` in {lines:#?}"
            );
        }
    }
    // Three downloads, all of this machine's asset: the per-architecture pick.
    let requests = release.requests();
    assert_eq!(release.downloads(target), 3, "{requests}");
    assert_eq!(release.downloads(other), 0, "{requests}");
    assert_eq!(requests.lines().count(), 3, "{requests}");

    // The results of the test job are in the closed launch.
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    let mut expected = allure_tests(&unit);
    expected.sort();
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:#?}");
    assert_eq!(launches[0]["name"], "Pinned release");
    assert_eq!(launches[0]["closed"], true);
    let launch_id = launches[0]["id"].as_i64().unwrap();
    assert_eq!(server_tests(&api.results(launch_id)), expected);
    assert_eq!(fs::read_dir(project.tmp()).unwrap().count(), 0);
    assert_no_token(&server, &project, &[&run]);
}

/// An onelaunch of the pinned version already on PATH (as in the release's
/// -ci image that the start and finish jobs run in) is used as it is: no job
/// downloads anything.
#[test]
fn gitlab_pinned_template_uses_the_pinned_version_on_path_without_download() {
    let Some(gcl) = runner() else { return };
    let server = TestServer::start();
    let api = server.api();
    let release = LocalRelease::start(&format!("v{}", env!("CARGO_PKG_VERSION")));
    let (project, _) = pinned_project(&server, &release, PINNED_PIPELINE);
    let image_bin = project.root.path().join("image-bin");
    fs::create_dir_all(&image_bin).unwrap();
    std::os::unix::fs::symlink(bin(), image_bin.join("onelaunch")).unwrap();
    let path = format!("{}:{}", image_bin.display(), host_path());

    let run = project.run_with_path(&gcl, &args(&ca_vars(&release)), &path);
    let out = run.all();
    assert_eq!(run.code, 0, "gitlab-ci-local failed:\n{out}");
    let using = format!(
        "onelaunch: using {} on PATH (onelaunch {}, the pinned version; nothing to download)",
        image_bin.join("onelaunch").display(),
        env!("CARGO_PKG_VERSION")
    );
    for job in ["onelaunch-start", "tests", "onelaunch-finish"] {
        assert_job_result(&out, "PASS", job);
        let lines = job_lines(&out, job);
        assert!(
            lines.iter().any(|l| l.contains(&using)),
            "{job}: {lines:#?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("onelaunch: downloading")),
            "{job}: {lines:#?}"
        );
    }
    assert_eq!(release.requests(), "", "nothing is downloaded");
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:#?}");
    assert_eq!(launches[0]["closed"], true);
    let launch_id = launches[0]["id"].as_i64().unwrap();
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    assert_eq!(api.results(launch_id).len(), allure_tests(&unit).len());
}

/// A release asset changed after it was pinned (a compromised mirror): the
/// start job refuses it, naming the URL, the pinned and the actual hash, and
/// nothing runs (no launch, no test job); the finish job refuses it too.
#[test]
fn gitlab_pinned_template_refuses_a_tampered_release_asset() {
    let Some(gcl) = runner() else { return };
    let server = TestServer::start();
    let api = server.api();
    let release = LocalRelease::start("v9.9.9");
    let (project, _) = pinned_project(&server, &release, PINNED_PIPELINE);
    let target = host_target();
    release.tamper(target);
    let url = release.asset_url(target);
    let pinned = release.sha256(target);
    let actual = sha256_of(&release.asset_path(target));
    assert_ne!(pinned, actual);

    let run = project.run(&gcl, &args(&ca_vars(&release)));
    let out = run.all();
    assert_ne!(run.code, 0, "a tampered asset passed:\n{out}");
    assert_job_result(&out, "FAIL", "onelaunch-start");
    // gitlab-ci-local ends the pipeline with the failed .pre job; GitLab would
    // still run the finish job (`when: always`): run it on its own.
    let mut finish_args = ca_vars(&release);
    finish_args.push("onelaunch-finish".into());
    let finish = project.run(&gcl, &args(&finish_args));
    let finish_out = finish.all();
    assert_ne!(finish.code, 0, "{finish_out}");
    assert_job_result(&finish_out, "FAIL", "onelaunch-finish");
    let message = format!("SHA-256 mismatch for {url}: expected {pinned} (the sha256-");
    for (job, out) in [("onelaunch-start", &out), ("onelaunch-finish", &finish_out)] {
        let lines = job_lines(out, job);
        assert!(
            lines.iter().any(|l| l.contains(&message)
                && l.contains(&format!("got {actual}; refusing to install it"))),
            "{job}: {lines:#?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("tampered")),
            "{job} ran the tampered binary: {lines:#?}"
        );
    }
    assert!(
        !job_lines(&out, "tests ")
            .iter()
            .any(|l| l.contains("Running")),
        "the test job ran after the start job failed:\n{out}"
    );
    assert!(api.launches(1).is_empty(), "a launch was created");
    assert_eq!(fs::read_dir(project.tmp()).unwrap().count(), 0);
}

/// The committed template is not pinned to a release (version: unreleased):
/// without ONELAUNCH_BIN its jobs stop with a message saying so and naming
/// what to set instead, before any download.
#[test]
fn gitlab_unpinned_template_says_it_is_not_pinned_and_what_to_set() {
    let Some(gcl) = runner() else { return };
    let server = TestServer::start();
    let api = server.api();
    let project = Project::new(Some(&server));
    assert!(
        read(&fixture(TEMPLATE)).contains("      default: \"unreleased\" # pinned: version\n"),
        "the committed template is pinned; keep `unreleased` in the repository"
    );
    project.write(
        ".gitlab-ci.yml",
        "include:\n  - local: plugins/gitlab/templates/onelaunch.yml\n\nonelaunch-start:\n  extends: .onelaunch-start\n",
    );
    project.commit();
    let run = project.run(&gcl, &[]);
    let out = run.all();
    assert_ne!(run.code, 0, "{out}");
    assert_job_result(&out, "FAIL", "onelaunch-start");
    let lines = job_lines(&out, "onelaunch-start").join("\n");
    for text in [
        "this copy of the template is not pinned to a release (version: unreleased)",
        "ONELAUNCH_BIN",
        "component: $CI_SERVER_FQDN/<group>/onelaunch/onelaunch@<release>",
        "the download-url and sha256 inputs",
    ] {
        assert!(lines.contains(text), "no `{text}` in:\n{lines}");
    }
    assert!(!lines.contains("onelaunch: downloading"), "{lines}");
    assert!(api.launches(1).is_empty());
}

/// A test job whose upload fails (its after_script reaches the server on a
/// closed port): the job keeps its results and a marker naming it
/// (onelaunch-kept/, an artifact), the finish job uploads them into the
/// launch as that job and fails naming it, so the pipeline is not green; a
/// job whose upload worked leaves nothing behind.
#[test]
fn gitlab_failed_upload_fails_the_pipeline_and_the_finish_job_delivers_the_results() {
    let Some(gcl) = runner() else { return };
    let server = TestServer::start();
    let api = server.api();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    let junit = fixture("examples/pipelines/gitlab-api/results");
    let project = Project::new(Some(&server));
    project.write(
        ".gitlab-ci.yml",
        &format!(
            r#"include:
  - local: plugins/gitlab/templates/onelaunch.yml
    inputs:
      launch-name: Lost upload

stages:
  - test

onelaunch-start:
  extends: .onelaunch-start

unit-tests:
  extends: .onelaunch-upload
  stage: test
  variables:
    ALLURE_RESULTS: build/unit
  script:
    - mkdir -p "$ALLURE_RESULTS"
    - cp test-data/unit/* "$ALLURE_RESULTS/"
  after_script:
    # The server is unreachable from this job.
    - export ALLURE_ENDPOINT=http://127.0.0.1:{closed}
    - !reference [.onelaunch-upload, after_script]

api-tests:
  extends: .onelaunch-upload
  stage: test
  variables:
    ALLURE_RESULTS: build/api
  script:
    - mkdir -p "$ALLURE_RESULTS"
    - cp test-data/api/* "$ALLURE_RESULTS/"

onelaunch-finish:
  extends: .onelaunch-finish
"#
        ),
    );
    project.add_files("test-data/unit", &unit);
    project.add_files("test-data/api", &junit);
    project.commit();
    let bin_var = format!("ONELAUNCH_BIN={}", bin().display());
    let run = project.run(&gcl, &["--variable", &bin_var]);
    let out = run.all();
    assert_ne!(run.code, 0, "the pipeline hid the failed upload:\n{out}");
    assert_job_result(&out, "PASS", "onelaunch-start");
    // after_script never changes a job's status...
    assert_job_result(&out, "PASS", "unit-tests");
    assert_job_result(&out, "PASS", "api-tests");
    // ...so the finish job fails instead, naming the job.
    assert_job_result(&out, "FAIL", "onelaunch-finish");
    let unit_lines = job_lines(&out, "unit-tests").join("\n");
    assert!(
        unit_lines.contains("onelaunch: the upload of job 'unit-tests' failed (exit code")
            && unit_lines.contains("its results are kept in onelaunch-kept/"),
        "{unit_lines}"
    );
    let finish = job_lines(&out, "onelaunch-finish").join("\n");
    let env = check_dotenv(&project);
    let launch_id: i64 = env["ALLURE_LAUNCH_ID"].parse().unwrap();
    let job_run_id: i64 = env["ALLURE_JOB_RUN_ID"].parse().unwrap();
    for text in [
        "onelaunch: the upload of job 'unit-tests' (job ".to_string(),
        "onelaunch: the kept results of job 'unit-tests' are in launch".to_string(),
        format!("Launch [{launch_id}] closed"),
        "onelaunch: the upload failed in: 'unit-tests' (job ".to_string(),
        "fails, so that the failed upload is not hidden".to_string(),
    ] {
        assert!(finish.contains(&text), "no `{text}` in:\n{finish}");
    }
    assert!(!finish.contains("'api-tests'"), "{finish}");

    // Every result of both jobs is in the closed launch, in the pipeline's
    // job run.
    let mut expected = allure_tests(&unit);
    expected.extend(junit_tests());
    expected.sort();
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:#?}");
    assert_eq!(launches[0]["closed"], true);
    let results = api.results(launch_id);
    assert_eq!(server_tests(&results), expected);
    assert!(results.iter().all(|r| r["jobRunId"] == job_run_id));

    // The kept results: one marker, of the failed job, with its results.
    let markers: Vec<PathBuf> = files_under(&project.repo().join("onelaunch-kept"))
        .into_iter()
        .filter(|p| p.ends_with("job.txt"))
        .collect();
    assert_eq!(markers.len(), 1, "{markers:?}");
    let marker = parse_env(&read(&markers[0]));
    assert_eq!(marker["CI_JOB_NAME"], "unit-tests", "{marker:?}");
    let code: i32 = marker["EXIT_CODE"].parse().unwrap();
    assert_ne!(code, 0);
    // The finish job named the failed job and its exit code, and uploaded
    // its results as that job (the launch's environment lists its CI_JOB_ID
    // as an execution).
    let job_id = &marker["CI_JOB_ID"];
    for text in [
        format!("the upload of job 'unit-tests' (job {job_id}) failed (exit code {code}); uploading its kept results"),
        format!("CI_EXECUTION = {job_id}"),
    ] {
        assert!(finish.contains(&text), "no `{text}` in:\n{finish}");
    }
    let kept = markers[0].parent().unwrap().join("results");
    assert_eq!(
        fs::read_dir(&kept).unwrap().count(),
        fs::read_dir(&unit).unwrap().count()
    );
    assert_no_token(&server, &project, &[&run]);
}

/// Every example in examples/gitlab/ parses with the template (inputs,
/// extends, !reference, needs, stages), once its component include is
/// swapped for the local template.
#[test]
fn gitlab_examples_parse_with_the_template() {
    let Some(gcl) = runner() else { return };
    let project = Project::new(None);
    let examples = [
        (
            ".gitlab-ci.yml",
            &[
                "onelaunch-start",
                "tests: [unit,allure-results]",
                "tests: [api,build/test-results]",
                "onelaunch-finish",
            ][..],
        ),
        (
            "parent-child.yml",
            &["onelaunch-start", "unit", "e2e", "onelaunch-finish"][..],
        ),
        ("child.yml", &["e2e: [1/3]", "e2e: [2/3]", "e2e: [3/3]"][..]),
        (
            "other-project.yml",
            &["onelaunch-start", "contract-tests", "onelaunch-finish"][..],
        ),
    ];
    // The template as it is committed, checked against GitLab's JSON schema.
    project.write(TEMPLATE, &read(&fixture(TEMPLATE)));
    for (file, _) in &examples {
        let text = read(&fixture(&format!("examples/gitlab/{file}")));
        assert!(
            text.contains(COMPONENT_INCLUDE),
            "examples/gitlab/{file} does not include the component as `{COMPONENT_INCLUDE}`"
        );
        project.write(file, &text.replace(COMPONENT_INCLUDE, LOCAL_INCLUDE));
    }
    project.commit();
    for (file, jobs) in &examples {
        let run = project.run_validated(&gcl, &["--file", file, "--list"]);
        let out = run.all();
        assert_eq!(run.code, 0, "{file}:\n{out}");
        let listed: Vec<&str> = out.lines().collect();
        for job in *jobs {
            let line = listed
                .iter()
                .find(|l| l.starts_with(&format!("{job} ")))
                .unwrap_or_else(|| panic!("{file}: job {job} not listed:\n{out}"));
            let cols: Vec<&str> = line.split_whitespace().collect();
            if *job == "onelaunch-start" {
                assert!(cols.contains(&".pre"), "{file}: {line}");
            }
            if *job == "onelaunch-finish" {
                assert!(
                    cols.contains(&".post") && cols.contains(&"always"),
                    "{file}: {line}"
                );
            }
        }
    }
}

/// Issue 14: the finish job's quality gate. The pipeline of
/// tests/ci/gitlab/.gitlab-ci.yml (two tests fail) with `quality-gate: true`
/// and `gate-rules: --max-failures 0` in the template's inputs: the finish job
/// closes the launch, prints the gate's table with the broken `maxFailures`
/// rule (measured and expected) in its log and keeps it as the
/// onelaunch-gate.md artifact, and fails.
#[test]
fn gitlab_finish_with_a_broken_quality_gate_fails_after_closing() {
    let Some(gcl) = runner() else { return };
    let server = TestServer::start();
    let api = server.api();
    let project = Project::new(Some(&server));
    let pipeline = read(&fixture("tests/ci/gitlab/.gitlab-ci.yml"));
    let gated = pipeline.replace(
        "      launch-tags: release, gitlab\n",
        "      launch-tags: release, gitlab\n      quality-gate: true\n      gate-rules: --max-failures 0\n",
    );
    assert_ne!(gated, pipeline);
    project.write(".gitlab-ci.yml", &gated);
    project.add_files(
        "test-data/unit",
        &fixture("examples/pipelines/github-unit/allure-results"),
    );
    project.add_files(
        "test-data/api",
        &fixture("examples/pipelines/gitlab-api/results"),
    );
    project.commit();
    let bin_var = format!("ONELAUNCH_BIN={}", bin().display());
    let run = project.run(&gcl, &["--variable", &bin_var]);
    let out = run.all();
    assert_ne!(
        run.code, 0,
        "the broken gate did not fail the pipeline:\n{out}"
    );
    assert_job_result(&out, "PASS", "onelaunch-start");
    assert_job_result(&out, "PASS", "tests: [api,");
    assert_job_result(&out, "FAIL", "onelaunch-finish");

    // Closed first, then judged.
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:#?}");
    assert_eq!(launches[0]["closed"], true);
    let launch_id = launches[0]["id"].as_i64().unwrap();
    let failures = api
        .results(launch_id)
        .iter()
        .filter(|r| r["status"] == "failed" || r["status"] == "broken")
        .count();
    assert!(failures >= 2, "{failures}");
    let finish = job_lines(&out, "onelaunch-finish").join("\n");
    let rule = format!("| maxFailures | at most 0 | {failures}");
    assert!(
        finish.contains(&format!("Launch [{launch_id}] closed")),
        "{finish}"
    );
    assert!(
        finish.contains(&format!("### Quality gate of launch {launch_id}: FAILED")),
        "{finish}"
    );
    assert!(
        finish
            .lines()
            .any(|l| l.contains(&rule) && l.ends_with("| **fail** |")),
        "{finish}"
    );
    assert!(
        finish.contains("the quality gate of launch") && finish.contains("broken rules"),
        "{finish}"
    );
    // The artifact the job leaves behind.
    let md = read(&project.repo().join("onelaunch-gate.md"));
    assert!(md.contains(&rule), "{md}");
    assert_no_token(&server, &project, &[&run]);
}

/// Words of gate-rules that are not known flags fail the finish job before
/// anything runs (and nothing of them reaches a shell as text).
#[test]
fn gitlab_gate_rules_reject_unknown_words() {
    let Some(gcl) = runner() else { return };
    let server = TestServer::start();
    let project = Project::new(Some(&server));
    let marker = project.root.path().join("pwned");
    project.write(
        ".gitlab-ci.yml",
        &format!(
            "include:\n  - local: plugins/gitlab/templates/onelaunch.yml\n    inputs:\n      quality-gate: true\n      gate-rules: \"--max-failures 0 ; touch {m} $(touch {m})\"\n\nonelaunch-finish:\n  extends: .onelaunch-finish\n",
            m = marker.display()
        ),
    );
    project.commit();
    let bin_var = format!("ONELAUNCH_BIN={}", bin().display());
    let run = project.run(
        &gcl,
        &["--variable", &bin_var, "--variable", "ALLURE_LAUNCH_ID=1"],
    );
    let out = run.all();
    assert_ne!(run.code, 0, "{out}");
    assert_job_result(&out, "FAIL", "onelaunch-finish");
    assert!(out.contains("gate-rules: unknown word ';'"), "{out}");
    assert!(!marker.exists(), "gate-rules text ran through a shell");
}

/// `plugins/gitlab` as a CI/CD component project: every spec input of the
/// template (typed, defaulted, described) is a row of the README's inputs
/// table with its default, and `.gitlab-ci.yml` tests the component at its
/// own commit and publishes tags with the `release:` keyword. Parsed with
/// PyYAML (GitLab's `!reference` tags accepted as opaque).
#[test]
fn gitlab_component_project_documents_every_input_and_publishes_releases() {
    let root = fixture("plugins/gitlab");
    assert!(root.join("templates/onelaunch.yml").is_file());
    let script = r#"
import json, sys, yaml
class L(yaml.SafeLoader):
    pass
L.add_multi_constructor("!", lambda loader, suffix, node: None)
with open(sys.argv[1]) as f:
    spec = next(yaml.load_all(f, Loader=L))
with open(sys.argv[2]) as f:
    ci = yaml.load(f, Loader=L)
json.dump({"spec": spec, "ci": ci}, sys.stdout)
"#;
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(root.join("templates/onelaunch.yml"))
        .arg(root.join(".gitlab-ci.yml"))
        .output()
        .expect("python3 with PyYAML");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();

    let inputs = doc["spec"]["spec"]["inputs"]
        .as_object()
        .expect("spec:inputs");
    let readme = read(&root.join("README.md"));
    let rows: BTreeMap<String, Vec<String>> = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l
                .split(" | ")
                .map(|c| c.trim_matches(['|', ' ']).to_string())
                .collect();
            (cells[0].trim_matches('`').to_string(), cells)
        })
        .collect();
    for name in [
        "version",
        "sha256-x86_64",
        "sha256-aarch64",
        "release-url",
        "download-url",
        "sha256",
        "image",
    ] {
        assert!(inputs.contains_key(name), "no input {name}");
    }
    for (name, input) in inputs {
        assert!(
            input["description"].as_str().is_some_and(|d| !d.is_empty()),
            "input {name} has no description"
        );
        let default = match &input["default"] {
            Value::String(s) if s.is_empty() => "\"\"".to_string(),
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            other => panic!("input {name}: default {other}"),
        };
        if input["type"] == "boolean" {
            assert!(input["default"].is_boolean(), "{name}: {input}");
        }
        let row = rows
            .get(name.as_str())
            .unwrap_or_else(|| panic!("README.md: no row for the input `{name}`"));
        assert_eq!(
            row[1],
            format!("`{default}`"),
            "README.md: the default of `{name}`"
        );
        assert!(!row[2].is_empty(), "README.md: `{name}` has no description");
    }
    // The README shows the component include.
    assert!(readme.contains("- component: $CI_SERVER_FQDN/<group>/onelaunch/onelaunch@<version>"));

    let ci = &doc["ci"];
    assert_eq!(
        ci["include"][0]["component"],
        "$CI_SERVER_FQDN/$CI_PROJECT_PATH/onelaunch@$CI_COMMIT_SHA"
    );
    for (job, base) in [
        ("onelaunch-start", ".onelaunch-start"),
        ("component-test", ".onelaunch-upload"),
        ("onelaunch-finish", ".onelaunch-finish"),
    ] {
        assert_eq!(ci[job]["extends"], base, "{job}");
    }
    let release = &ci["create-release"];
    assert!(
        release["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("registry.gitlab.com/gitlab-org/release-cli")),
        "{release}"
    );
    assert_eq!(release["rules"][0]["if"], "$CI_COMMIT_TAG");
    assert_eq!(release["release"]["tag_name"], "$CI_COMMIT_TAG");
    assert!(release["release"]["description"].is_string());
}
