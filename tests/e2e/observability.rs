//! Health, readiness, metrics and logs of the server: `/healthz` and
//! `/readyz` on SQLite, `/readyz` following a PostgreSQL outage and a
//! read-only blob store (no restart of the server), `/metrics` read with the
//! Prometheus project's own text-format parser (`prometheus_client.parser`,
//! installed by `scripts/tools/prometheus-client.sh`) and matched against
//! what the real CLI uploaded, and the request log as JSON and as text.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::pg::PgCluster;
use crate::support::*;

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GET without a token: status and JSON body.
fn get_json(url: &str) -> (u16, Value) {
    let r = http().get(url).send().expect("GET");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Polls `/readyz` until it answers `want` (bounded: the server's checks
/// take at most a few seconds each), returning the last body.
#[track_caller]
fn readyz_until(url: &str, want: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get_json(&format!("{url}/readyz"));
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not turn {want}: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {body}"))
}

// ---------------------------------------------------------------- health

#[test]
fn healthz_and_readyz_answer_without_a_token_on_sqlite() {
    let server = TestServer::start();
    let r = http()
        .get(format!("{}/healthz", server.url))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "ok");
    let (status, body) = get_json(&format!("{}/readyz", server.url));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["failed"], json!([]));
    for name in ["database", "migrations", "blob_store"] {
        assert_eq!(check(&body, name)["status"], "ok", "{body}");
    }
    // The probe file is gone: the blob store holds only what was uploaded.
    let blobs = server.work_dir().join("data").join("blobs");
    assert_eq!(count_files(&blobs, ".tmp"), 0);
}

#[test]
fn readyz_fails_while_postgresql_is_down_and_recovers_without_a_restart() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.database("obs_ready");
    let server = TestServer::start_with(&["--database-url", &url]);
    let body = readyz_until(&server.url, 200);
    assert_eq!(body["status"], "ready");

    pg.stop();
    let body = readyz_until(&server.url, 503);
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["failed"], json!(["database"]), "{body}");
    let db = check(&body, "database");
    assert!(
        ["database_unavailable", "database_timeout"].contains(&db["code"].as_str().unwrap()),
        "{body}"
    );
    assert_eq!(check(&body, "migrations")["status"], "skipped");
    assert_eq!(check(&body, "blob_store")["status"], "ok");
    // The process itself is alive: /healthz does not touch the database.
    let (status, _) = get_json(&format!("{}/healthz", server.url));
    assert_eq!(status, 200);
    assert!(!body.to_string().contains("postgres://"), "{body}");
    // /metrics still answers, saying the database did not.
    let (_, m) = scrape(&server.url);
    let up = family(&m, "onelaunch_database_up", "gauge");
    assert_eq!(up.value("onelaunch_database_up", &[]), Some(0.0));
    assert!(family(&m, "onelaunch_db_pool_max", "gauge")
        .value("onelaunch_db_pool_max", &[("pool", "shared")])
        .is_some());

    pg.start_again();
    let body = readyz_until(&server.url, 200);
    assert_eq!(body["failed"], json!([]));
    let (_, m) = scrape(&server.url);
    let up = family(&m, "onelaunch_database_up", "gauge");
    assert_eq!(up.value("onelaunch_database_up", &[]), Some(1.0));
    // The same process serves again: a write goes through.
    let dir = server.work_dir().join("results");
    generate_results(&dir, "pgback", 3);
    server
        .cli()
        .github("9001", "after-outage")
        .run(&["upload", dir.to_str().unwrap()])
        .ok();
    let launch = server.api().launches(1)[0]["id"].as_i64().unwrap();
    assert_eq!(server.api().results(launch).len(), 3);
}

/// A tmpfs mounted over a directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "cannot mount a tmpfs on {} (the test runs as root)",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }

    fn remount(&self, mode: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {mode} of {} failed", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn readyz_fails_while_the_blob_store_is_read_only() {
    let data = tempfile::tempdir().unwrap();
    let blobs = Tmpfs::mount(&data.path().join("blobs"));
    let server = TestServer::start_in(Some(data.path()), &[]);
    readyz_until(&server.url, 200);

    blobs.remount("ro");
    let body = readyz_until(&server.url, 503);
    assert_eq!(body["failed"], json!(["blob_store"]), "{body}");
    let b = check(&body, "blob_store");
    assert_eq!(b["code"], "blob_store_not_writable", "{body}");
    assert_eq!(check(&body, "database")["status"], "ok");
    assert_eq!(check(&body, "migrations")["status"], "ok");

    blobs.remount("rw");
    readyz_until(&server.url, 200);
    assert_eq!(count_files(&blobs.0, ".tmp"), 0);
    drop(server);
}

// ---------------------------------------------------------------- metrics

/// One metric family as the parser read it.
#[derive(Debug)]
struct Family {
    kind: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Family {
    /// The value of the sample `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
    }
}

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    if f.name in out:
        raise SystemExit("family %s appears twice" % f.name)
    out[f.name] = {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
json.dump(out, sys.stdout)
"#;

/// Parses a Prometheus text exposition with `prometheus_client.parser`.
fn parse_exposition(text: &str) -> BTreeMap<String, Family> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (install Python 3 and run scripts/tools/prometheus-client.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics (is prometheus-client installed? \
         scripts/tools/prometheus-client.sh):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(name, f)| {
            let samples = f["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let labels = s[1]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect();
                    (
                        s[0].as_str().unwrap().to_string(),
                        labels,
                        s[2].as_f64().unwrap(),
                    )
                })
                .collect();
            let kind = f["type"].as_str().unwrap().to_string();
            (name.clone(), Family { kind, samples })
        })
        .collect()
}

fn scrape(url: &str) -> (String, BTreeMap<String, Family>) {
    let r = http().get(format!("{url}/metrics")).send().unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text().unwrap();
    let families = parse_exposition(&text);
    (text, families)
}

#[track_caller]
fn family<'a>(m: &'a BTreeMap<String, Family>, name: &str, kind: &str) -> &'a Family {
    let f = m
        .get(name)
        .unwrap_or_else(|| panic!("no metric family {name}: {:?}", m.keys()));
    assert_eq!(f.kind, kind, "{name}");
    f
}

#[test]
fn metrics_parse_and_count_what_the_cli_uploaded() {
    let server = TestServer::start();
    let dir = server.work_dir().join("results");
    // 30 results; every tenth has an attachment: 3 attachments.
    generate_results(&dir, "obs", 30);
    let attachments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-attachment.txt"))
        .collect();
    assert_eq!(attachments.len(), 3);
    let bytes: u64 = attachments
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let upload = server
        .cli()
        .github("5150", "metrics")
        .run(&["upload", dir.to_str().unwrap()])
        .ok();
    // The launch's name and link come with the job run's start: the CLI
    // prints them without asking for the launch (see the requests below).
    let link = format!("Launch link: {}/launch/1", server.url);
    assert!(upload.stdout.contains("Launch [1] "), "{}", upload.stdout);
    assert!(upload.stdout.contains(&link), "{}", upload.stdout);

    let (text, m) = scrape(&server.url);
    let results = family(&m, "onelaunch_results_ingested", "counter");
    assert_eq!(
        results.value("onelaunch_results_ingested_total", &[]),
        Some(30.0)
    );
    let att = family(&m, "onelaunch_attachments_ingested", "counter");
    assert_eq!(
        att.value("onelaunch_attachments_ingested_total", &[]),
        Some(3.0)
    );
    let b = family(&m, "onelaunch_attachment_bytes_ingested", "counter");
    assert_eq!(
        b.value("onelaunch_attachment_bytes_ingested_total", &[]),
        Some(bytes as f64)
    );

    // Requests by route template, never by raw path.
    let requests = family(&m, "onelaunch_http_requests", "counter");
    for (_, labels, _) in &requests.samples {
        let route = &labels["route"];
        assert!(
            route == "unmatched"
                || (route.starts_with('/') && !route.split('/').any(|s| s.parse::<i64>().is_ok())),
            "a raw path as route: {route}"
        );
        assert!(!route.contains('?'), "{route}");
    }
    // The three attachments of the 30 results go in one bulk request.
    assert_eq!(
        requests.value(
            "onelaunch_http_requests_total",
            &[
                ("route", "/api/upload/attachment/bulk"),
                ("method", "POST"),
                ("status", "200"),
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(requests
        .value(
            "onelaunch_http_requests_total",
            &[("route", "/api/upload/test-result"), ("status", "200")]
        )
        .is_some_and(|n| n >= 1.0));
    assert_eq!(
        requests.value(
            "onelaunch_http_requests_total",
            &[("route", "/api/launch/{id}"), ("method", "GET")]
        ),
        None,
        "{text}"
    );
    let latency = family(&m, "onelaunch_http_request_duration_seconds", "histogram");
    let route = [("route", "/api/upload/attachment/bulk"), ("method", "POST")];
    assert_eq!(
        latency.value("onelaunch_http_request_duration_seconds_count", &route),
        Some(1.0)
    );
    let mut inf = route.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(
        latency.value("onelaunch_http_request_duration_seconds_bucket", &inf),
        Some(1.0)
    );

    // Gauges read from the database agree with the API.
    let open = server
        .api()
        .launches(1)
        .iter()
        .filter(|l| l["closed"] == false)
        .count();
    assert_eq!(open, 1);
    let g = family(&m, "onelaunch_launches_open", "gauge");
    assert_eq!(g.value("onelaunch_launches_open", &[]), Some(open as f64));
    let s = family(&m, "onelaunch_upload_sessions_open", "gauge");
    assert_eq!(
        s.value("onelaunch_upload_sessions_open", &[("state", "active")]),
        Some(0.0)
    );
    let up = family(&m, "onelaunch_database_up", "gauge");
    assert_eq!(up.value("onelaunch_database_up", &[]), Some(1.0));
    for pool in ["read", "write"] {
        let size = family(&m, "onelaunch_db_pool_size", "gauge")
            .value("onelaunch_db_pool_size", &[("pool", pool)])
            .unwrap();
        let idle = family(&m, "onelaunch_db_pool_idle", "gauge")
            .value("onelaunch_db_pool_idle", &[("pool", pool)])
            .unwrap();
        let used = family(&m, "onelaunch_db_pool_in_use", "gauge")
            .value("onelaunch_db_pool_in_use", &[("pool", pool)])
            .unwrap();
        assert_eq!(size, idle + used, "{pool}");
    }
    // The SQLite group writer ran every result batch of the upload, in at
    // most as many transactions, and nothing waits now.
    let grouped = family(&m, "onelaunch_ingest_writes_grouped", "gauge")
        .value("onelaunch_ingest_writes_grouped", &[])
        .unwrap();
    let groups = family(&m, "onelaunch_ingest_write_groups", "gauge")
        .value("onelaunch_ingest_write_groups", &[])
        .unwrap();
    assert!(
        grouped >= 1.0 && groups >= 1.0 && groups <= grouped,
        "{groups} groups of {grouped} writes"
    );
    assert_eq!(
        family(&m, "onelaunch_ingest_writes_waiting", "gauge")
            .value("onelaunch_ingest_writes_waiting", &[]),
        Some(0.0)
    );
    // None of them failed, so no group was run again.
    assert_eq!(
        family(&m, "onelaunch_ingest_write_groups_replayed", "gauge")
            .value("onelaunch_ingest_write_groups_replayed", &[]),
        Some(0.0)
    );
    let free = family(&m, "onelaunch_blob_store_free_bytes", "gauge")
        .value("onelaunch_blob_store_free_bytes", &[])
        .unwrap();
    assert!(free > 0.0);

    // Nothing names a project, a launch or a token.
    let labels: BTreeSet<&str> = m
        .values()
        .flat_map(|f| f.samples.iter().flat_map(|(_, l, _)| l.keys()))
        .map(String::as_str)
        .collect();
    let allowed: BTreeSet<&str> = [
        "route", "method", "status", "le", "state", "pool", "version", "provider", "outcome",
    ]
    .into();
    assert!(labels.is_subset(&allowed), "{labels:?}");
    assert!(!text.contains(TOKEN));
}

fn send_json(api: &Api, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
    let r = api
        .http
        .request(method, format!("{}{path}", api.url))
        .header("Authorization", format!("api-token {}", api.token))
        .json(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn metrics_count_trigger_outcomes_per_provider() {
    let server = TestServer::start();
    let api = server.api();
    let dir = server.work_dir().join("results");
    generate_results(&dir, "trig", 2);
    server
        .cli()
        .github("6100", "tests")
        .run(&["upload", dir.to_str().unwrap()])
        .ok();
    let launch = api.launches(1)[0]["id"].as_i64().unwrap();
    server
        .cli()
        .run(&["launch", "close", &launch.to_string()])
        .ok();
    let job = api.get("/api/project/1/job")[0]["id"].as_i64().unwrap();
    let case = api.get("/api/testcase?projectId=1&size=10")["content"][0]["id"]
        .as_i64()
        .unwrap();
    let run = |integration: Value| {
        let (s, v) = send_json(
            &api,
            reqwest::Method::PATCH,
            &format!("/api/job/{job}"),
            &json!({"canRunTests": true, "integration": integration}),
        );
        assert_eq!(s, 200, "{v}");
        api.post(
            "/api/testcase/run",
            &json!({"projectId": 1, "testCaseIds": [case], "launchName": "Triggered"}),
        );
    };
    // A command that starts: ok.
    run(json!({"type": "command", "command": "true"}));
    // A Jenkins nobody listens for: the provider cannot be reached.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    run(
        json!({"type": "jenkins", "url": format!("http://127.0.0.1:{closed_port}"), "jobPath": "a"}),
    );

    let (text, m) = scrape(&server.url);
    let t = family(&m, "onelaunch_triggers", "counter");
    assert_eq!(
        t.value(
            "onelaunch_triggers_total",
            &[("provider", "command"), ("outcome", "ok")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        t.value(
            "onelaunch_triggers_total",
            &[("provider", "jenkins"), ("outcome", "transport")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(t.samples.len(), 2, "{text}");
}

#[test]
fn metrics_can_require_an_admin_token() {
    let server = TestServer::start_with(&["--metrics-require-admin"]);
    let metrics = format!("{}/metrics", server.url);
    assert_eq!(http().get(&metrics).send().unwrap().status(), 401);
    let project_token = server.api().post("/api/project/1/token", &json!({}))["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http()
        .get(&metrics)
        .header("Authorization", format!("api-token {project_token}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http()
        .get(&metrics)
        .header("Authorization", format!("api-token {TOKEN}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    parse_exposition(&r.text().unwrap());
    // Health stays open.
    assert_eq!(get_json(&format!("{}/readyz", server.url)).0, 200);
}

// ---------------------------------------------------------------- logs

/// A server whose log (stderr) goes to a file.
struct LoggedServer {
    url: String,
    log: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

impl LoggedServer {
    fn start(args: &[&str], env: &[(&str, &str)]) -> LoggedServer {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let mut child = Command::new(bin())
            .args(["server", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .args(["--init-token", TOKEN])
            .args(args)
            .env_remove("ONELAUNCH_LOG")
            .env_remove("NO_COLOR")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("server exited").unwrap();
            if let Some(addr) = line.strip_prefix("onelaunch server listening on ") {
                break addr.to_string();
            }
        };
        // Keep reading stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        readyz_until(&url, 200);
        LoggedServer {
            url,
            log,
            child,
            dir,
        }
    }

    fn cli(&self) -> Cli {
        Cli::new(&self.url, TOKEN)
    }

    fn log(&self) -> Vec<u8> {
        std::fs::read(&self.log).unwrap()
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Uploads results with attachments through the CLI and makes a few API
/// requests that name a launch and a project; answers the launch id.
fn traffic(server: &LoggedServer) -> i64 {
    let dir = server.dir.path().join("results");
    generate_results(&dir, "logs", 12);
    server
        .cli()
        .github("777", "logs")
        .run(&["upload", dir.to_str().unwrap()])
        .ok();
    let api = Api {
        url: server.url.clone(),
        token: TOKEN.to_string(),
        http: reqwest::blocking::Client::new(),
    };
    let launch = api.launches(1)[0]["id"].as_i64().unwrap();
    let r = api
        .http
        .get(format!("{}/api/launch/{launch}", server.url))
        .header("Authorization", format!("api-token {TOKEN}"))
        .header("X-Request-Id", "obs-request-1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "obs-request-1");
    // A token in a query string (clients do it): the route template keeps
    // it out of the log.
    let (status, _) = api.get_raw(&format!("/api/testresult?launchId={launch}&token={TOKEN}"));
    assert_eq!(status, 200);
    launch
}

#[test]
fn json_logs_have_one_line_per_request_and_no_token() {
    let server = LoggedServer::start(&["--log-format", "json"], &[]);
    let launch = traffic(&server);
    let (_, m) = scrape(&server.url);
    let log = String::from_utf8(server.log()).unwrap();
    assert!(!log.contains(TOKEN), "the log shows the token:\n{log}");
    assert!(!log.to_ascii_lowercase().contains("authorization"));
    assert!(!log.contains('\x1b'));
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request" && l["target"] == "onelaunch_server::request")
        .collect();
    // One line per request: as many as /metrics counted (probes and
    // scrapes are logged at debug, so they are left out of both).
    let counted: f64 = family(&m, "onelaunch_http_requests", "counter")
        .samples
        .iter()
        .filter(|(_, l, _)| !["/healthz", "/readyz", "/metrics"].contains(&l["route"].as_str()))
        .map(|(_, _, v)| v)
        .sum();
    assert_eq!(requests.len() as f64, counted, "{log}");
    for r in &requests {
        assert!(r["method"].is_string() && r["route"].is_string(), "{r}");
        assert!(r["status"].is_u64() && r["latency_ms"].is_number(), "{r}");
        assert!(
            r["request_id"].as_str().is_some_and(|s| !s.is_empty()),
            "{r}"
        );
    }
    let attachments = requests
        .iter()
        .filter(|r| r["route"] == "/api/upload/attachment/bulk")
        .count();
    assert_eq!(
        attachments, 1,
        "12 results, every tenth with an attachment: one bulk request"
    );
    let named = requests
        .iter()
        .find(|r| r["request_id"] == "obs-request-1")
        .expect("the request with X-Request-Id");
    assert_eq!(named["route"], "/api/launch/{id}");
    assert_eq!(named["method"], "GET");
    assert_eq!(named["status"], 200);
    assert_eq!(named["launch_id"], launch);
    let listed = requests
        .iter()
        .find(|r| r["route"] == "/api/launch" && r["method"] == "GET")
        .expect("the launch list request");
    assert_eq!(listed["project_id"], 1);
    let results = requests
        .iter()
        .find(|r| r["route"] == "/api/testresult")
        .expect("the result list request");
    assert_eq!(results["launch_id"], launch);
}

#[test]
fn text_logs_to_a_file_have_no_escape_byte() {
    let server = LoggedServer::start(&[], &[]);
    traffic(&server);
    let log = server.log();
    assert!(!log.contains(&0x1b), "an escape sequence in a log file");
    let log = String::from_utf8(log).unwrap();
    assert!(!log.contains(TOKEN), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("route=/api/launch/{id}") && l.contains("request_id=obs-request-1"))
        .unwrap_or_else(|| panic!("no request line:\n{log}"));
    assert!(
        line.contains("INFO") && line.contains("method=GET"),
        "{line}"
    );
    assert!(
        line.contains("status=200") && line.contains("latency_ms="),
        "{line}"
    );
}

/// The server's text log on a terminal (`script`'s pseudo-terminal): the
/// request line of a request, and whether it was painted.
fn log_on_a_terminal(no_color: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cmd = format!(
        "exec '{}' server --listen 127.0.0.1:0 --data '{}' --init-token {TOKEN}",
        bin().display(),
        dir.path().join("data").display()
    );
    let mut c = Command::new("script");
    c.args(["-qfec", &cmd, "/dev/null"])
        .env_remove("ONELAUNCH_LOG")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm");
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("`script` (util-linux/bsdutils) is needed for this test");
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the server on a terminal stopped talking")
    };
    let url = loop {
        let line = next();
        if let Some(at) = line.find("listening on ") {
            break line[at + "listening on ".len()..].trim().to_string();
        }
    };
    assert_eq!(get_json(&format!("{url}/api/launch/4")).0, 401);
    let line = loop {
        let line = next();
        if line.contains("/api/launch/{id}") {
            break line;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    line
}

#[test]
fn text_logs_are_coloured_only_on_a_terminal_without_no_color() {
    let painted = log_on_a_terminal(false);
    assert!(
        painted.contains('\x1b'),
        "no colour on a terminal: {painted:?}"
    );
    let plain = log_on_a_terminal(true);
    assert!(
        !plain.contains('\x1b'),
        "colour despite NO_COLOR: {plain:?}"
    );
    assert!(plain.contains("launch_id=4"), "{plain:?}");
}
