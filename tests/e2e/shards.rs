//! Parallel shards of one CI run share one job run (issue 13): an upload ends
//! only its own upload session, never the job run, and `launch close --wait`
//! waits for every session still open. A plain close while an upload is in
//! flight strands nothing: the upload keeps what was refused in its spool
//! (exit 8) and says so, and the resend after `launch reopen` delivers
//! exactly that.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

const RUN_ID: &str = "5150";

/// `job-run start` of the pipeline, and the `ALLURE_*` its shards export
/// (`job-run env`).
fn start(server: &TestServer) -> (i64, i64, Vec<(String, String)>) {
    let ci = server.cli().github(RUN_ID, "start");
    let out: Value =
        serde_json::from_str(&ci.run(&["job-run", "start", "-o", "json"]).ok().stdout).unwrap();
    let env = parse_env(&ci.run(&["job-run", "env"]).ok().stdout);
    let shared = ["ALLURE_LAUNCH_ID", "ALLURE_JOB_RUN_ID"]
        .iter()
        .map(|k| (k.to_string(), env[*k].clone()))
        .collect();
    (
        out["launchId"].as_i64().unwrap(),
        out["jobRunId"].as_i64().unwrap(),
        shared,
    )
}

/// A job of the same workflow run, with the shared launch and job run.
fn shard(server: &TestServer, job: &str, shared: &[(String, String)]) -> Cli {
    let mut cli = server.cli().github(RUN_ID, job);
    for (k, v) in shared {
        cli = cli.env(k, v);
    }
    cli
}

/// `watch` of a test command that writes the results of `produced` once
/// `gate` exists (bounded: it gives up after a minute).
fn spawn_watch(cli: &Cli, results: &Path, produced: &Path, gate: &Path) -> Child {
    let script = format!(
        "for i in $(seq 1 600); do [ -f '{gate}' ] && break; sleep 0.1; done; cp '{produced}'/* '{results}'/",
        gate = gate.display(),
        produced = produced.display(),
        results = results.display(),
    );
    cli.command(&[
        "watch",
        "--results",
        results.to_str().unwrap(),
        "--interval",
        "0.1",
        "--",
        "bash",
        "-c",
        &script,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

/// Polls `f` (every 100 ms, at most a minute) until it holds.
#[track_caller]
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for a child (at most two minutes) and returns its exit code and output.
fn finish(mut child: Child) -> Run {
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            child.kill().ok();
            panic!("the command did not end");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Run::from(child.wait_with_output().unwrap())
}

fn open_sessions(api: &Api, launch: i64) -> Vec<Value> {
    api.get(&format!("/api/launch/{launch}"))["participants"]["openSessions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn uuids(api: &Api, launch: i64) -> BTreeSet<String> {
    api.results(launch)
        .iter()
        .map(|r| r["uuid"].as_str().unwrap().to_string())
        .collect()
}

fn generated(prefix: &str, range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

#[test]
fn close_wait_waits_for_the_slow_shard_of_a_shared_job_run() {
    let server = TestServer::start();
    let api = server.api();
    let (launch, run, shared) = start(&server);
    let work = tempfile::tempdir().unwrap();

    // The fast shard uploads and ends.
    let fast_dir = work.path().join("fast");
    generate_results(&fast_dir, "fast", 20);
    shard(&server, "shard-1", &shared)
        .run(&["upload", fast_dir.to_str().unwrap()])
        .ok();
    let runs = api.job_runs(launch);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        runs[0]["stage"], "in_progress",
        "an upload ends only its session"
    );

    // The slow shard's watch is in flight: its session is open before any
    // result is written.
    let produced = work.path().join("produced");
    generate_results(&produced, "slow", 15);
    let results = work.path().join("slow");
    let gate = work.path().join("go");
    let watch = spawn_watch(
        &shard(&server, "shard-2", &shared),
        &results,
        &produced,
        &gate,
    );
    eventually("the slow shard's session is open", || {
        !open_sessions(&api, launch).is_empty()
    });
    let session = open_sessions(&api, launch)[0]["id"].as_i64().unwrap();

    // The finish step: job-run stop, then close --wait.
    let finisher = shard(&server, "finish", &shared);
    finisher.run(&["job-run", "stop"]).ok();
    assert_eq!(api.job_runs(launch)[0]["stage"], "finished");
    let (close, rx) = spawn_reading_stderr(finisher.command(&[
        "launch",
        "close",
        &launch.to_string(),
        "--wait",
        "--timeout",
        "2m",
        "-o",
        "json",
    ]));
    let waiting = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("close --wait says it waits for the slow shard");
    assert!(waiting.contains("Waiting"), "{waiting}");
    assert!(
        waiting.contains(&format!("in flight: upload session [{session}] of github")),
        "{waiting}"
    );
    assert_eq!(
        api.get(&format!("/api/launch/{launch}"))["closed"],
        false,
        "not closed while the slow shard uploads"
    );

    // The slow shard's tests write their results and end.
    std::fs::write(&gate, "").unwrap();
    let watched = finish(watch);
    assert_eq!(watched.code, 0, "{}\n{}", watched.stdout, watched.stderr);
    let closed = finish(close);
    assert_eq!(closed.code, 0, "{}\n{}", closed.stdout, closed.stderr);
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("no upload is in flight")),
        "{rest:?}"
    );
    let out: Value = serde_json::from_str(&closed.stdout).unwrap();
    assert_eq!(out["timedOut"], false, "{out}");
    assert_eq!(
        out.get("openSessions"),
        Some(&Value::Array(vec![])),
        "{out}"
    );

    // Every result of both shards is in the closed launch.
    let l = api.get(&format!("/api/launch/{launch}"));
    assert_eq!(l["closed"], true);
    let mut expected = generated("fast", 0..20);
    expected.extend(generated("slow", 0..15));
    assert_eq!(uuids(&api, launch), expected);
    assert_eq!(
        api.statistic(launch),
        expected_statistic(&[&fast_dir, &produced])
    );
    assert_eq!(api.job_runs(launch)[0]["id"], run);
    assert_eq!(api.job_runs(launch)[0]["resultCount"], 35);
}

#[test]
fn a_plain_close_keeps_what_an_upload_in_flight_had_not_delivered() {
    let server = TestServer::start();
    let api = server.api();
    let (launch, _run, shared) = start(&server);
    let work = tempfile::tempdir().unwrap();

    // The shard's tests write 5 results, which arrive; 10 more come after
    // the launch was closed.
    let early = work.path().join("early");
    let late = work.path().join("late");
    let mut all = Vec::new();
    generate_results(&early, "inflight", 15);
    for e in std::fs::read_dir(&early).unwrap() {
        all.push(e.unwrap().path());
    }
    std::fs::create_dir_all(&late).unwrap();
    for p in &all {
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let index: usize = name
            .trim_start_matches("inflight-")
            .split(['-', '.'])
            .next()
            .unwrap()
            .parse()
            .unwrap();
        if index >= 5 {
            std::fs::rename(p, late.join(&name)).unwrap();
        }
    }
    let results = work.path().join("results");
    copy_dir(&early, &results);
    let gate = work.path().join("go");
    let watch = spawn_watch(&shard(&server, "shard-1", &shared), &results, &late, &gate);
    eventually("the first 5 results arrive", || {
        api.results(launch).len() == 5
    });
    assert_eq!(open_sessions(&api, launch).len(), 1);

    // Someone closes the launch without --wait; then the tests go on.
    server
        .cli()
        .run(&["launch", "close", &launch.to_string()])
        .ok();
    std::fs::write(&gate, "").unwrap();
    let watched = finish(watch);
    assert_eq!(watched.code, 8, "{}\n{}", watched.stdout, watched.stderr);
    let spool = results.join(".onelaunch-spool");
    let message = &watched.stderr;
    for part in [
        format!("launch [{launch}] was closed while this upload was in flight"),
        "5 results were accepted".to_string(),
        format!("10 result files kept in {}", spool.display()),
        format!("onelaunch launch reopen {launch}"),
        format!("onelaunch upload --resume --spool {}", spool.display()),
    ] {
        assert!(message.contains(&part), "{part:?} not in:\n{message}");
    }
    assert_eq!(uuids(&api, launch), generated("inflight", 0..5));
    assert!(
        open_sessions(&api, launch).is_empty(),
        "the refused upload closed its session"
    );
    let kept = spool.join("files/0");
    assert_eq!(count_files(&kept, "-result.json"), 10);

    // Reopened, the resend delivers exactly the kept results.
    server
        .cli()
        .run(&["launch", "reopen", &launch.to_string()])
        .ok();
    let out = server
        .cli()
        .run(&[
            "upload",
            "--resume",
            "--spool",
            spool.to_str().unwrap(),
            "-o",
            "json",
        ])
        .ok();
    let out: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(out["results"], 10, "{out}");
    assert_eq!(out["launchId"], launch);
    assert!(!spool.exists());
    assert_eq!(uuids(&api, launch), generated("inflight", 0..15));
    assert!(open_sessions(&api, launch).is_empty());
}

#[test]
fn a_shard_joining_by_its_ci_identity_does_not_finish_the_shared_job_run() {
    let server = TestServer::start();
    let api = server.api();
    let (launch, run, shared) = start(&server);
    let work = tempfile::tempdir().unwrap();
    // No ALLURE_JOB_RUN_ID: the shard joins the job run of its workflow run
    // by its CI identity (as a GitHub matrix leg or a Jenkins parallel stage).
    let launch_only: Vec<(String, String)> = shared
        .into_iter()
        .filter(|(k, _)| k == "ALLURE_LAUNCH_ID")
        .collect();
    let dir = work.path().join("fast");
    generate_results(&dir, "joined", 4);
    shard(&server, "shard-1", &launch_only)
        .run(&["upload", dir.to_str().unwrap()])
        .ok();
    let runs = api.job_runs(launch);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["id"], run);
    assert_eq!(runs[0]["resultCount"], 4);
    assert_eq!(
        runs[0]["stage"], "in_progress",
        "the other shards are not done: job-run stop finishes it"
    );
    let p = api.get(&format!("/api/launch/{launch}"))["participants"].clone();
    assert_eq!(p["unfinished"][0]["id"], run, "{p}");
    shard(&server, "finish", &launch_only)
        .run(&["job-run", "stop"])
        .ok();
    assert_eq!(api.job_runs(launch)[0]["stage"], "finished");
}
