//! Test support: a real `onelaunch server` on 127.0.0.1:0 with a temporary
//! SQLite database, and the real CLI binary run against it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const TOKEN: &str = "e2e-admin-token-5f1c9a";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_onelaunch"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join(rel)
}

/// A running server; killed on drop. Everything it printed is kept so tests
/// can assert that no token leaked into its output.
pub struct TestServer {
    pub url: String,
    pub dir: tempfile::TempDir,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> TestServer {
        Self::start_in(None, extra)
    }

    /// Starts a server whose data directory (attachments; the SQLite file
    /// unless `--database-url` is given) is `data`, e.g. shared by replicas.
    pub fn start_in(data: Option<&Path>, extra: &[&str]) -> TestServer {
        Self::start_logging(data, extra, "info")
    }

    /// [`TestServer::start_in`] with the server's log filter (`ONELAUNCH_LOG`),
    /// e.g. `"debug"` to include the request log.
    pub fn start_logging(data: Option<&Path>, extra: &[&str], log: &str) -> TestServer {
        Self::start_full(data, extra, log, &[])
    }

    /// [`TestServer::start_with`] with extra environment variables for the
    /// server process (its `ONELAUNCH_*` settings).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> TestServer {
        Self::start_full(None, extra, "info", env)
    }

    fn start_full(
        data: Option<&Path>,
        extra: &[&str],
        log: &str,
        env: &[(&str, &str)],
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(bin());
        server_args(&mut cmd, &dir, data, extra, log);
        cmd.envs(env.iter().copied());
        Self::spawn(cmd, dir)
    }

    /// Starts a server whose open-file limit is `nofile` (soft and hard, set
    /// by `ulimit -n` in the shell that then becomes the server).
    pub fn start_with_nofile(nofile: u64, extra: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("ulimit -n {nofile} && exec \"$0\" \"$@\"")])
            .arg(bin());
        server_args(&mut cmd, &dir, None, extra, "info");
        Self::spawn(cmd, dir)
    }

    fn spawn(mut cmd: Command, dir: tempfile::TempDir) -> TestServer {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let log = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if !sent && line.contains("listening on ") {
                        let _ = tx.send(line.rsplit(' ').next().unwrap_or("").to_string());
                        sent = true;
                    }
                    log.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not report its address");
        let server = TestServer {
            url,
            dir,
            child,
            log,
        };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::blocking::get(format!("{}/healthz", self.url)) {
                if r.status().is_success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server not healthy");
    }

    /// Kills the server process (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server process's id (to read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The CLI with a clean environment (no CI variables of the machine that
    /// runs the tests) pointed at this server.
    pub fn cli(&self) -> Cli {
        Cli::new(&self.url, TOKEN)
    }

    pub fn api(&self) -> Api {
        Api {
            url: self.url.clone(),
            token: TOKEN.to_string(),
            http: reqwest::blocking::Client::new(),
        }
    }

    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The arguments of `onelaunch server` for a test server in `dir`.
fn server_args(
    cmd: &mut Command,
    dir: &tempfile::TempDir,
    data: Option<&Path>,
    extra: &[&str],
    log: &str,
) {
    let data = data
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.path().join("data"));
    cmd.args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(["--init-token", TOKEN])
        .args(extra)
        .env("ONELAUNCH_LOG", log);
}

/// A CLI invocation builder.
#[derive(Clone)]
pub struct Cli {
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
}

impl Cli {
    pub fn new(url: &str, token: &str) -> Cli {
        let mut env = BTreeMap::new();
        for k in ["PATH", "HOME", "TMPDIR", "LANG"] {
            if let Ok(v) = std::env::var(k) {
                env.insert(k.to_string(), v);
            }
        }
        // No user config file from the machine running the tests.
        env.insert(
            "XDG_CONFIG_HOME".into(),
            "/nonexistent-onelaunch-config".into(),
        );
        env.insert("ALLURE_ENDPOINT".into(), url.to_string());
        env.insert("ALLURE_TOKEN".into(), token.to_string());
        Cli { env, cwd: None }
    }

    pub fn env(mut self, k: &str, v: impl ToString) -> Cli {
        self.env.insert(k.to_string(), v.to_string());
        self
    }

    pub fn envs(mut self, vars: &[(&str, &str)]) -> Cli {
        for (k, v) in vars {
            self.env.insert(k.to_string(), v.to_string());
        }
        self
    }

    /// GitHub Actions variables of one workflow run.
    pub fn github(self, run_id: &str, job: &str) -> Cli {
        self.envs(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_WORKFLOW", "CI"),
            ("GITHUB_RUN_ID", run_id),
            ("GITHUB_RUN_NUMBER", "17"),
            ("GITHUB_RUN_ATTEMPT", "1"),
            ("GITHUB_JOB", job),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REF", "refs/heads/main"),
        ])
    }

    /// GitLab CI variables of one pipeline.
    pub fn gitlab(self, pipeline_id: &str) -> Cli {
        self.envs(&[
            ("GITLAB_CI", "true"),
            ("CI_PROJECT_ID", "4242"),
            ("CI_PROJECT_NAME", "api-tests"),
            ("CI_PROJECT_URL", "https://gitlab.com/acme/api-tests"),
            ("CI_PIPELINE_ID", pipeline_id),
            (
                "CI_PIPELINE_URL",
                "https://gitlab.com/acme/api-tests/-/pipelines/1",
            ),
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_COMMIT_SHORT_SHA", "abc1234"),
        ])
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).env_clear().envs(&self.env);
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("run onelaunch");
        Run::from(out)
    }

    /// Runs a bash script with this environment and `onelaunch` on the PATH.
    pub fn bash(&self, script: &str) -> Run {
        let bin_dir = bin().parent().unwrap().to_path_buf();
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            self.env.get("PATH").cloned().unwrap_or_default()
        );
        let mut c = Command::new("bash");
        c.args(["-c", script])
            .env_clear()
            .envs(&self.env)
            .env("PATH", path);
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        Run::from(c.output().expect("run bash"))
    }
}

#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code:\n{}\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Direct HTTP access for assertions.
pub struct Api {
    pub url: String,
    pub token: String,
    pub http: reqwest::blocking::Client,
}

impl Api {
    /// A new project named `name` and a token of it (as this API's admin).
    pub fn project_with_token(&self, name: &str) -> (i64, String) {
        let id = self.post("/api/project", &json!({ "name": name }))["id"]
            .as_i64()
            .unwrap();
        let token = self.post(&format!("/api/project/{id}/token"), &Value::Null)["token"]
            .as_str()
            .unwrap()
            .to_string();
        (id, token)
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api {
            url: self.url.clone(),
            token: token.to_string(),
            http: self.http.clone(),
        }
    }

    pub fn get_raw(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header("Authorization", format!("api-token {}", self.token))
            .send()
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    #[track_caller]
    pub fn get(&self, path: &str) -> Value {
        let (s, v) = self.get_raw(path);
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    pub fn post_raw(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("Authorization", format!("api-token {}", self.token))
            .json(body)
            .send()
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    #[track_caller]
    pub fn post(&self, path: &str, body: &Value) -> Value {
        let (s, v) = self.post_raw(path, body);
        assert!((200..300).contains(&s), "POST {path}: {s} {v}");
        v
    }

    /// Launches of a project (all pages).
    pub fn launches(&self, project: i64) -> Vec<Value> {
        let v = self.get(&format!("/api/launch?projectId={project}&size=1000"));
        v["content"].as_array().cloned().unwrap_or_default()
    }

    /// Statistic of a launch as a map status → count.
    pub fn statistic(&self, launch: i64) -> BTreeMap<String, i64> {
        let v = self.get(&format!("/api/launch/{launch}/statistic"));
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["status"].as_str().unwrap().to_string(),
                    i["count"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    pub fn results(&self, launch: i64) -> Vec<Value> {
        let v = self.get(&format!("/api/testresult?launchId={launch}&size=1000"));
        v["content"].as_array().cloned().unwrap_or_default()
    }

    pub fn job_runs(&self, launch: i64) -> Vec<Value> {
        self.get(&format!("/api/launch/{launch}/job"))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Parses `KEY=VALUE` lines.
pub fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Copies a directory's files (flat) into a new directory.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Expected statistic of an Allure results directory computed from the files:
/// each test (historyId, else uuid) once, by its latest attempt (start time).
pub fn expected_statistic(dirs: &[&Path]) -> BTreeMap<String, i64> {
    let mut latest: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for dir in dirs {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if !p.to_string_lossy().ends_with("-result.json") {
                continue;
            }
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let key = v["historyId"]
                .as_str()
                .or(v["uuid"].as_str())
                .unwrap()
                .to_string();
            let start = v["start"].as_i64().unwrap_or(0);
            let status = v["status"].as_str().unwrap_or("unknown").to_string();
            match latest.get(&key) {
                Some((s, _)) if *s >= start => {}
                _ => {
                    latest.insert(key, (start, status));
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for (_, (_, s)) in latest {
        *out.entry(s).or_insert(0) += 1;
    }
    out
}

pub fn count_files(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(suffix)
        })
        .count()
}

/// Writes `n` generated Allure results (`<prefix>-<i>`) into `dir`, every
/// fourth failed, every tenth with a small text attachment.
pub fn generate_results(dir: &Path, prefix: &str, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let uuid = format!("{prefix}-{i}");
        let status = if i % 4 == 0 { "failed" } else { "passed" };
        let mut v = serde_json::json!({
            "uuid": uuid, "historyId": format!("h-{uuid}"), "name": format!("test {i}"),
            "fullName": format!("gen.{prefix}.test_{i}"), "status": status,
            "start": 1_700_000_000_000i64 + i as i64, "stop": 1_700_000_000_100i64 + i as i64,
            "labels": [{"name": "suite", "value": prefix}],
        });
        if i % 10 == 0 {
            let att = format!("{uuid}-attachment.txt");
            std::fs::write(dir.join(&att), format!("log of {uuid}\n")).unwrap();
            v["attachments"] =
                serde_json::json!([{"name": "log", "source": att, "type": "text/plain"}]);
        }
        std::fs::write(dir.join(format!("{uuid}-result.json")), v.to_string()).unwrap();
    }
}

/// A JUnit report of two tests, `api.Orders.case_0` (failed when `fail_first`)
/// and `api.Orders.case_1` (passed), without timestamps: two runs of the same
/// tests write the same file name and the same text but for the outcome.
pub fn orders_junit(fail_first: bool) -> String {
    let outcome = if fail_first {
        r#"<failure message="boom">trace</failure>"#
    } else {
        ""
    };
    format!(
        r#"<testsuite name="api"><testcase classname="api.Orders" name="case_0">{outcome}</testcase><testcase classname="api.Orders" name="case_1"/></testsuite>"#
    )
}

/// Starts `cmd` and hands its stderr over line by line, to read what a
/// waiting command (`launch close --wait`) says while it waits.
pub fn spawn_reading_stderr(mut cmd: Command) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// A web UI session logged in with the admin token [`TOKEN`].
pub struct UiSession {
    http: reqwest::blocking::Client,
    url: String,
    cookie: String,
}

/// The value of a `Set-Cookie` of a response; panics when it is missing.
pub fn set_cookie(r: &reqwest::blocking::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_string()
}

impl UiSession {
    pub fn login(url: &str) -> UiSession {
        UiSession::login_with(url, TOKEN)
    }

    /// Logs in with `token` (a project token logs in as itself).
    pub fn login_with(url: &str, token: &str) -> UiSession {
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = http.get(format!("{url}/login")).send().unwrap();
        let login = set_cookie(&r, "ol_login");
        let r = http
            .post(format!("{url}/login"))
            .header("Cookie", format!("ol_login={login}"))
            .form(&[("token", token), ("csrf", &login)])
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "login");
        UiSession {
            cookie: format!("ol_session={}", set_cookie(&r, "ol_session")),
            http,
            url: url.to_string(),
        }
    }

    /// The `Cookie` header value of the session.
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// A page that must answer 200, as text.
    pub fn get(&self, path: &str) -> String {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header("Cookie", &self.cookie)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r.text().unwrap()
    }
}

/// Every blob a SQLite server in `data` stores, sha256 → bytes: the files of
/// its blob store (`<data>/blobs/<aa>/<sha256>`) and the small blobs its
/// database keeps (`small_blobs`, at most 64 KiB each).
pub fn stored_blobs(data: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for fan in std::fs::read_dir(data.join("blobs")).into_iter().flatten() {
        let fan = fan.unwrap().path();
        if !fan.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&fan).unwrap() {
            let f = f.unwrap();
            let name = f.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".tmp") {
                out.insert(name, f.metadata().unwrap().len());
            }
        }
    }
    out.extend(small_blobs(data));
    out
}

/// Runs `work` on a connection to the SQLite database of a server in `data`
/// (the server may be running: WAL lets both in).
fn on_sqlite<T>(data: &Path, work: impl AsyncFnOnce(&mut sqlx::SqliteConnection) -> T) -> T {
    use sqlx::Connection;
    let url = format!("sqlite://{}", data.join("onelaunch.db").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let out = work(&mut conn).await;
        conn.close().await.unwrap();
        out
    })
}

/// The small blobs a SQLite server in `data` keeps in its database.
pub fn small_blobs(data: &Path) -> BTreeMap<String, u64> {
    use sqlx::Row;
    on_sqlite(data, async |conn| {
        let rows = sqlx::query("SELECT sha256, length(bytes) AS n FROM small_blobs")
            .fetch_all(conn)
            .await
            .unwrap();
        rows.iter()
            .map(|r| (r.get::<String, _>("sha256"), r.get::<i64, _>("n") as u64))
            .collect()
    })
}

/// Keeps `bytes` as a small blob of the SQLite server in `data` with no row
/// referencing it (an orphan, as a crash after a deletion's commit leaves).
pub fn put_small_blob(data: &Path, bytes: &[u8]) {
    use sha2::Digest;
    on_sqlite(data, async |conn| {
        sqlx::query("INSERT INTO small_blobs (sha256, bytes) VALUES ($1, $2)")
            .bind(hex::encode(sha2::Sha256::digest(bytes)))
            .bind(bytes)
            .execute(conn)
            .await
            .unwrap();
    })
}
