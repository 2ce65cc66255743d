//! Safe closing: `launch close` from any participant (twice at once),
//! `close --wait` with a late job run and with one that never reports,
//! `job-run start --expect N`, uploads after close, and the server's idle
//! closer.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::pg::PgCluster;
use crate::support::*;

/// The server log without terminal colour codes.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A CI job of a generic CI (each job its own job run).
fn job(server: &TestServer, name: &str) -> Cli {
    server.cli().envs(&[
        ("ALLURE_CI_TYPE", "shell"),
        ("ALLURE_JOB_UID", name),
        ("ALLURE_JOB_NAME", name),
        ("ALLURE_JOB_RUN_UID", "run-1"),
        ("ALLURE_JOB_RUN_NAME", "run 1"),
    ])
}

fn started(r: &Run) -> (i64, i64) {
    let v: Value = serde_json::from_str(&r.stdout).expect("json output");
    (
        v["launchId"].as_i64().unwrap(),
        v["jobRunId"].as_i64().unwrap(),
    )
}

#[test]
fn close_wait_waits_for_the_late_job_run_and_expected_participants() {
    let server = TestServer::start();
    let api = server.api();
    let first = job(&server, "build");
    let (launch, run_build) = started(
        &first
            .run(&[
                "job-run",
                "start",
                "--launch-name",
                "Release",
                "--expect",
                "3",
                "-o",
                "json",
            ])
            .ok(),
    );

    // Two of three participants are missing, and everyone can see it.
    let l = api.get(&format!("/api/launch/{launch}"));
    assert_eq!(l["expectedJobRuns"], 3);
    assert_eq!(l["participants"]["missing"], 2);
    assert_eq!(l["participants"]["started"], 1);
    assert_eq!(l["participants"]["unfinished"][0]["id"], run_build);
    let show = first.run(&["launch", "show", &launch.to_string()]).ok();
    assert!(
        show.stdout.contains("1 of 3 expected started") && show.stdout.contains("2 missing"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("2 expected job runs never started"),
        "{}",
        show.stdout
    );
    let md = first
        .run(&["launch", "show", &launch.to_string(), "-o", "markdown"])
        .ok();
    assert!(md.stdout.contains("Not reported yet"), "{}", md.stdout);
    let js = first
        .run(&["launch", "show", &launch.to_string(), "-o", "json"])
        .ok();
    let js: Value = serde_json::from_str(&js.stdout).unwrap();
    assert_eq!(js["participants"]["missing"], 2);
    assert_eq!(js["launch"]["expectedJobRuns"], 3);

    // The other two join the launch; two of the three finish.
    let joined = |name: &str| {
        let c = job(&server, name).env("ALLURE_LAUNCH_ID", launch);
        let (l, r) = started(&c.run(&["job-run", "start", "-o", "json"]).ok());
        assert_eq!(l, launch);
        (c, r)
    };
    let (_shard1, run1) = joined("shard-1");
    let (_shard2, run2) = joined("shard-2");
    let stop = |run: i64| {
        first
            .clone()
            .env("ALLURE_JOB_RUN_ID", run)
            .run(&["job-run", "stop"])
            .ok();
    };
    stop(run_build);
    stop(run1);
    let l = api.get(&format!("/api/launch/{launch}"));
    assert_eq!(l["participants"]["missing"], 0);
    assert_eq!(l["participants"]["finished"], 2);

    // A participant closes with --wait: it waits for shard-2, naming it.
    let (mut child, rx) = spawn_reading_stderr(first.command(&[
        "launch",
        "close",
        &launch.to_string(),
        "--wait",
        "--timeout",
        "90s",
    ]));
    let waiting = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("close --wait says what it waits for");
    assert!(waiting.contains("Waiting"), "{waiting}");
    assert!(
        waiting.contains(&format!("[{run2}] shard-2 / run 1 (in_progress)")),
        "{waiting}"
    );
    assert_eq!(
        api.get(&format!("/api/launch/{launch}"))["closed"],
        false,
        "not closed while a job run is still running"
    );
    stop(run2);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "close --wait did not finish");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(out.contains(&format!("Launch [{launch}] closed")), "{out}");
    let l = api.get(&format!("/api/launch/{launch}"));
    assert_eq!(l["closed"], true);
    assert!(l["participants"]["unfinished"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn close_wait_times_out_closes_and_names_who_never_reported() {
    let server = TestServer::start();
    let api = server.api();
    let c = job(&server, "slow-suite");
    let (launch, run) = started(
        &c.run(&["job-run", "start", "--expect", "2", "-o", "json"])
            .ok(),
    );
    let started_at = Instant::now();
    let r = c
        .run(&[
            "launch",
            "close",
            &launch.to_string(),
            "--wait",
            "--timeout",
            "2s",
            "-o",
            "json",
        ])
        .ok();
    assert!(started_at.elapsed() >= Duration::from_secs(2));
    assert!(r.stderr.contains("warning"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("[{run}] slow-suite / run 1 (in_progress)")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("1 expected job run never started"),
        "{}",
        r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["timedOut"], true);
    assert_eq!(v["closed"], true);
    assert_eq!(v["missing"], 1);
    assert_eq!(v["unfinished"][0]["id"], run);
    assert_eq!(api.get(&format!("/api/launch/{launch}"))["closed"], true);

    // Without participants to wait for, --wait closes at once.
    let other = job(&server, "quick");
    let (l2, r2) = started(&other.run(&["job-run", "start", "-o", "json"]).ok());
    other
        .clone()
        .env("ALLURE_JOB_RUN_ID", r2)
        .run(&["job-run", "stop"])
        .ok();
    let t = Instant::now();
    let r = other
        .run(&["launch", "close", &l2.to_string(), "--wait"])
        .ok();
    assert!(t.elapsed() < Duration::from_secs(10), "{}", r.all());
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    // --timeout needs --wait.
    other
        .run(&["launch", "close", &l2.to_string(), "--timeout", "5s"])
        .code(2);
}

#[test]
fn two_participants_close_at_once_and_uploads_after_close_need_reopening() {
    let server = TestServer::start();
    let api = server.api();
    let a = job(&server, "job-a");
    let (launch, run_a) = started(
        &a.run(&["job-run", "start", "--launch-name", "Shared", "-o", "json"])
            .ok(),
    );
    let b = job(&server, "job-b").env("ALLURE_LAUNCH_ID", launch);
    let (_, run_b) = started(&b.run(&["job-run", "start", "-o", "json"]).ok());
    let dir = server.work_dir().join("results");
    generate_results(&dir, "late", 12);

    // Both jobs close the launch at the same moment: both succeed.
    let handles: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|c| std::thread::spawn(move || c.run(&["launch", "close", &launch.to_string()])))
        .collect();
    for h in handles {
        let r = h.join().unwrap().ok();
        assert!(r.stdout.contains("closed"), "{}", r.stdout);
    }
    assert_eq!(api.get(&format!("/api/launch/{launch}"))["closed"], true);
    assert_eq!(api.launches(1).len(), 1);

    // A late upload is refused with its own exit code and stores nothing.
    let late = b.clone().env("ALLURE_JOB_RUN_ID", run_b);
    let r = late.run(&["upload", dir.to_str().unwrap()]).code(6);
    assert!(r.stderr.contains("closed"), "{}", r.stderr);
    assert!(api.results(launch).is_empty());
    // The API says so too.
    let (status, body) = api.post_raw("/api/upload/session", &json!({"jobRunId": run_a}));
    assert_eq!(status, 409, "{body}");

    // With --reopen-closed-launch it arrives, exactly once.
    late.run(&["upload", "--reopen-closed-launch", dir.to_str().unwrap()])
        .ok();
    late.run(&["upload", "--reopen-closed-launch", dir.to_str().unwrap()])
        .ok();
    assert_eq!(api.results(launch).len(), 12);
    assert_eq!(api.get(&format!("/api/launch/{launch}"))["closed"], false);
}

/// `busy` stays active through the servers in turn while `idle` is closed by
/// one of them, exactly once; then `busy` closes too.
fn idle_close_story(servers: &[&TestServer]) {
    let apis: Vec<Api> = servers.iter().map(|s| s.api()).collect();
    let api = &apis[0];
    let idle = api.post("/api/launch", &json!({"name": "idle", "projectId": 1}))["id"]
        .as_i64()
        .unwrap();
    let busy = api.post("/api/launch", &json!({"name": "busy", "projectId": 1}))["id"]
        .as_i64()
        .unwrap();
    let session = api.post(
        "/api/upload/session?manual=true",
        &json!({"launchId": busy}),
    )["id"]
        .as_i64()
        .unwrap();
    // Keep `busy` active with a result batch every 300 ms until `idle` closes.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        apis[n % apis.len()].post(
            "/api/upload/test-result",
            &json!({"testSessionId": session, "results": [{"uuid": format!("b-{n}"), "name": "t", "status": "passed"}]}),
        );
        n += 1;
        if api.get(&format!("/api/launch/{idle}"))["closed"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "idle launch was not closed");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        api.get(&format!("/api/launch/{busy}"))["closed"],
        false,
        "an active launch stays open"
    );
    let closed_lines = |launch: i64| {
        servers
            .iter()
            .map(|s| strip_ansi(&s.log()))
            .flat_map(|log| log.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|l| {
                l.contains("launch closed after being idle")
                    && l.contains(&format!("launch={launch} "))
            })
            .count()
    };
    // The close is committed before its log line is written: give the line
    // a moment to appear (the count is checked again at the end).
    let logged = |launch: i64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while closed_lines(launch) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        closed_lines(launch)
    };
    assert_eq!(logged(idle), 1, "closed and logged exactly once");
    assert_eq!(closed_lines(busy), 0);
    // Once nothing happens, the busy one closes too.
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.get(&format!("/api/launch/{busy}"))["closed"] != true {
        assert!(Instant::now() < deadline, "busy launch never closed");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(api.results(busy).len(), n);
    assert_eq!(logged(busy), 1);
    assert_eq!(closed_lines(idle), 1, "still once");
}

#[test]
fn the_server_closes_idle_launches_and_logs_it() {
    let server = TestServer::start_with(&["--launch-idle-close", "3s"]);
    idle_close_story(&[&server]);
}

#[test]
fn replicas_on_postgres_close_each_idle_launch_once() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.database("idle");
    let shared = tempfile::tempdir().unwrap();
    let args = ["--database-url", url.as_str(), "--launch-idle-close", "3s"];
    let a = TestServer::start_in(Some(shared.path()), &args);
    let b = TestServer::start_in(Some(shared.path()), &args);
    idle_close_story(&[&a, &b]);
}

/// `POST` a multipart body of one file to `path`; the status and JSON answer.
fn post_file(api: &Api, path: &str, name: &str, bytes: &[u8]) -> (u16, Value) {
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(bytes.to_vec())
            .file_name(name.to_string())
            .mime_str("text/plain")
            .unwrap(),
    );
    let r = api
        .http
        .post(format!("{}{path}", api.url))
        .header("Authorization", format!("api-token {}", api.token))
        .multipart(form)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// One rule for every write into a closed launch: new data (sessions, results,
/// manual results, launch attachments) is refused with the code
/// `launch_closed`; what completes a result accepted before the close (its
/// attachments and fixtures) is kept. Manual results count as launch activity.
#[test]
fn a_closed_launch_refuses_new_data_but_keeps_what_completes_accepted_results() {
    let server = TestServer::start();
    let api = server.api();
    let launch = api.post("/api/launch", &json!({"name": "rule", "projectId": 1}))["id"]
        .as_i64()
        .unwrap();
    let session = api.post("/api/upload/session", &json!({"launchId": launch}))["id"]
        .as_i64()
        .unwrap();
    let up = api.post(
        "/api/upload/test-result",
        &json!({"testSessionId": session, "results": [{"uuid": "r-1", "name": "t", "status": "failed",
            "attachments": [{"name": "log", "originalFileName": "late.txt", "contentType": "text/plain"}]}]}),
    );
    let rid = up["resultIds"][0].as_i64().unwrap();
    api.post(&format!("/api/launch/{launch}/close"), &json!({}));

    // The rest of an accepted result arrives after the close and is kept.
    let (status, body) = post_file(
        &api,
        &format!("/api/upload/test-result/{rid}/attachment"),
        "late.txt",
        b"written after the close",
    );
    assert_eq!(status, 202, "{body}");
    let (status, body) = api.post_raw(
        &format!("/api/upload/test-result/{rid}/test-fixture-result"),
        &json!({"fixtures": [{"type": "AFTER", "uuid": "f-late", "name": "teardown", "status": "passed", "steps": []}]}),
    );
    assert_eq!(status, 202, "{body}");
    let stored = api.get(&format!("/api/testresult/{rid}"));
    let att = &stored["attachments"][0];
    assert_eq!(att["fileName"], "late.txt");
    assert_eq!(att["stored"], true, "{stored}");
    assert_eq!(stored["fixtures"].as_array().unwrap().len(), 1);
    let content = api
        .http
        .get(format!("{}/api/attachment/{}/content", api.url, att["id"]))
        .header("Authorization", format!("api-token {}", api.token))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(content, "written after the close");

    // New data is refused, each with the machine-readable code.
    let refused = |status: u16, body: &Value| {
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["code"], "launch_closed", "{body}");
    };
    let (s, b) = api.post_raw("/api/upload/session", &json!({"launchId": launch}));
    refused(s, &b);
    let (s, b) = api.post_raw(
        "/api/upload/test-result",
        &json!({"testSessionId": session, "results": [{"uuid": "r-2", "name": "t2", "status": "passed"}]}),
    );
    refused(s, &b);
    let (s, b) = api.post_raw(
        &format!("/api/launch/{launch}/manual"),
        &json!({"results": [{"name": "checked by hand", "status": "passed"}]}),
    );
    refused(s, &b);
    let (s, b) = post_file(
        &api,
        &format!("/api/launch/attachment?launchId={launch}"),
        "report.txt",
        b"launch-level",
    );
    refused(s, &b);
    assert_eq!(api.results(launch).len(), 1);

    // Reopened, a manual result is launch activity like any upload.
    api.post(&format!("/api/launch/{launch}/reopen"), &json!({}));
    let before = api.get(&format!("/api/launch/{launch}"))["lastModifiedDate"]
        .as_i64()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    api.post(
        &format!("/api/launch/{launch}/manual"),
        &json!({"results": [{"name": "checked by hand", "status": "passed"}]}),
    );
    let after = api.get(&format!("/api/launch/{launch}"))["lastModifiedDate"]
        .as_i64()
        .unwrap();
    assert!(after > before, "manual results move the launch's activity");
}
