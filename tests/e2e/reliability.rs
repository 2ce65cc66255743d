//! Never lose or duplicate a result: concurrent uploaders into one job run, a
//! server SIGKILLed twice during an upload, a proxy that drops one connection
//! in ten, the durable spool with `upload --resume`, and a GitHub re-run
//! (attempt 2) whose results become retries.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

// ---------------------------------------------------------------- a fault-injecting proxy

/// A loopback TCP proxy in front of one server whose backend can be switched
/// (a restarted server listens on a new port), which counts byte patterns in
/// what clients send, and which can inject faults: with `faults` on, every
/// request gets its own connection (`Connection: close` is added), one
/// connection in ten is dropped (before anything is forwarded, in the middle
/// of the request, or after the request with the answer thrown away) and the
/// others are delayed by up to 20 ms.
struct FaultProxy {
    url: String,
    backend: Arc<Mutex<String>>,
    needles: Arc<Vec<(Vec<u8>, AtomicUsize)>>,
    connections: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

/// A dead address: nothing listens on port 1.
const DEAD: &str = "127.0.0.1:1";

impl FaultProxy {
    fn start(backend: &str, faults: bool, needles: &[&str]) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let proxy = FaultProxy {
            url,
            backend: Arc::new(Mutex::new(String::new())),
            needles: Arc::new(
                needles
                    .iter()
                    .map(|n| (n.as_bytes().to_vec(), AtomicUsize::new(0)))
                    .collect(),
            ),
            connections: Arc::new(AtomicUsize::new(0)),
            dropped: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        proxy.set_backend(backend);
        let (backend, needles, connections, dropped, stop) = (
            proxy.backend.clone(),
            proxy.needles.clone(),
            proxy.connections.clone(),
            proxy.dropped.clone(),
            proxy.stop.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let n = connections.fetch_add(1, Ordering::Relaxed) as u64;
                let upstream = backend.lock().unwrap().clone();
                let (needles, dropped) = (needles.clone(), dropped.clone());
                std::thread::spawn(move || {
                    if faults {
                        faulty(client, &upstream, &needles, &dropped, Rng::new(n));
                    } else if let Ok(server) = TcpStream::connect(&upstream) {
                        pipe(client, server, needles);
                    }
                });
            }
        });
        proxy
    }

    /// New connections go to this server (`http://host:port` or `host:port`).
    fn set_backend(&self, url: &str) {
        *self.backend.lock().unwrap() = url.trim_start_matches("http://").to_string();
    }

    /// How often the `i`-th needle appeared in what clients sent.
    fn count(&self, i: usize) -> usize {
        self.needles[i].1.load(Ordering::SeqCst)
    }

    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// xorshift64*, enough to pick faults.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
        Rng((seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nanos) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Counts needles across chunk boundaries.
struct Counter {
    needles: Arc<Vec<(Vec<u8>, AtomicUsize)>>,
    tail: Vec<u8>,
}

impl Counter {
    fn feed(&mut self, chunk: &[u8]) {
        let longest = self.needles.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        if longest == 0 {
            return;
        }
        let mut window = std::mem::take(&mut self.tail);
        let carried = window.len();
        window.extend_from_slice(chunk);
        for (needle, count) in self.needles.iter() {
            let found = window
                .windows(needle.len())
                .enumerate()
                // Matches lying wholly in the carried tail were counted before.
                .filter(|(i, w)| i + needle.len() > carried && *w == needle.as_slice())
                .count();
            count.fetch_add(found, Ordering::SeqCst);
        }
        let keep = window.len().min(longest - 1);
        self.tail = window[window.len() - keep..].to_vec();
    }
}

fn pipe(client: TcpStream, server: TcpStream, needles: Arc<Vec<(Vec<u8>, AtomicUsize)>>) {
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        copy(
            client,
            server,
            Some(Counter {
                needles,
                tail: Vec::new(),
            }),
        )
    });
    copy(s2, c2, None);
    let _ = up.join();
}

fn copy(mut from: TcpStream, mut to: TcpStream, mut counter: Option<Counter>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(c) = counter.as_mut() {
                    c.feed(&buf[..n]);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Reads an HTTP request head (up to the blank line); returns it and any body
/// bytes read with it.
fn read_head(client: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = data.split_off(end + 4);
            return Some((data, rest));
        }
        if data.len() > 256 * 1024 {
            return None;
        }
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

fn faulty(
    mut client: TcpStream,
    upstream: &str,
    needles: &Arc<Vec<(Vec<u8>, AtomicUsize)>>,
    dropped: &AtomicUsize,
    mut rng: Rng,
) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let Some((head, early_body)) = read_head(&mut client) else {
        return;
    };
    // 10 %: dropped, in one of three ways.
    let fate = rng.below(30);
    if fate == 0 {
        dropped.fetch_add(1, Ordering::SeqCst);
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    std::thread::sleep(Duration::from_millis(rng.below(20)));
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    // One request per connection, so that every request may meet a fault.
    let text = String::from_utf8_lossy(&head[..head.len() - 2]).into_owned();
    let head = format!("{text}Connection: close\r\n\r\n").into_bytes();
    let mut counter = Counter {
        needles: needles.clone(),
        tail: Vec::new(),
    };
    counter.feed(&head);
    counter.feed(&early_body);
    if fate == 1 {
        // Cut in the middle of the request: the server never sees all of it.
        dropped.fetch_add(1, Ordering::SeqCst);
        let mut request = head.clone();
        request.extend_from_slice(&early_body);
        let cut = rng.below(request.len() as u64) as usize;
        let _ = server.write_all(&request[..cut]);
        let _ = server.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    if server.write_all(&head).is_err() || server.write_all(&early_body).is_err() {
        return;
    }
    if fate == 2 {
        if let Some(len) = content_length(&head) {
            // The whole request reaches the server, the answer is thrown away:
            // the client must repeat a request the server already handled.
            let mut remaining = len.saturating_sub(early_body.len());
            let mut buf = [0u8; 16 * 1024];
            while remaining > 0 {
                match client.read(&mut buf[..remaining.min(16 * 1024)]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        counter.feed(&buf[..n]);
                        if server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        remaining -= n;
                    }
                }
            }
            let mut sink = Vec::new();
            let _ = server.read_to_end(&mut sink);
            dropped.fetch_add(1, Ordering::SeqCst);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    }
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = std::thread::spawn(move || copy(client, server, Some(counter)));
    copy(s2, c2, None);
    let _ = up.join();
}

// ---------------------------------------------------------------- helpers

/// Starts this CI job's job run (generic CI) and returns (launch id, job run id).
fn start_job_run(cli: &Cli) -> (i64, i64) {
    let r = cli.run(&["job-run", "start", "-o", "json"]).ok();
    let v: Value = serde_json::from_str(&r.stdout).expect("json output");
    (
        v["launchId"].as_i64().unwrap(),
        v["jobRunId"].as_i64().unwrap(),
    )
}

fn generic_job(cli: Cli, run: &str) -> Cli {
    cli.envs(&[
        ("ALLURE_CI_TYPE", "shell"),
        ("ALLURE_JOB_UID", "reliability"),
        ("ALLURE_JOB_NAME", "reliability"),
        ("ALLURE_JOB_RUN_UID", run),
    ])
}

/// Number of results stored in a launch.
fn result_count(api: &Api, launch: i64) -> i64 {
    api.get(&format!("/api/testresult?launchId={launch}&size=1"))["totalElements"]
        .as_i64()
        .unwrap()
}

/// Every stored result of a launch (all pages).
fn all_results(api: &Api, launch: i64) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 0.. {
        let v = api.get(&format!(
            "/api/testresult?launchId={launch}&size=1000&page={page}"
        ));
        let content = v["content"].as_array().cloned().unwrap_or_default();
        if content.is_empty() {
            break;
        }
        out.extend(content);
    }
    out
}

/// Asserts exactly `expected` results, each uuid once.
#[track_caller]
fn assert_exact(api: &Api, launch: i64, expected: usize) -> Vec<Value> {
    let results = all_results(api, launch);
    let uuids: HashSet<&str> = results
        .iter()
        .map(|r| r["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(results.len(), expected, "stored results");
    assert_eq!(uuids.len(), expected, "distinct uuids");
    results
}

/// Asserts that `expected` attachments are stored (bytes included), each once.
#[track_caller]
fn assert_attachments_stored(api: &Api, results: &[Value], expected: usize) {
    let mut stored = 0;
    for r in results
        .iter()
        .filter(|r| r["attachmentCount"].as_i64() != Some(0))
    {
        let v = api.get(&format!("/api/testresult/{}", r["id"]));
        for a in v["attachments"].as_array().unwrap() {
            assert_eq!(a["stored"], true, "{v}");
            stored += 1;
        }
    }
    assert_eq!(stored, expected, "stored attachments");
}

/// Waits (bounded) until the launch holds at least `n` results.
fn wait_for_count(api: &Api, launch: i64, n: i64, upload: &mut Background) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if result_count(api, launch) >= n {
            return;
        }
        assert!(
            upload.try_wait().unwrap().is_none(),
            "the upload ended before {n} results arrived"
        );
        assert!(Instant::now() < deadline, "{n} results never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A CLI run in the background. Its output goes to files, so that a chatty
/// process (retry warnings) never blocks on a full pipe.
struct Background {
    child: Child,
    out: tempfile::NamedTempFile,
    err: tempfile::NamedTempFile,
}

impl Background {
    fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }
}

fn spawn_upload(cli: &Cli, args: &[&str]) -> Background {
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let child = cli
        .command(args)
        .stdout(Stdio::from(out.reopen().unwrap()))
        .stderr(Stdio::from(err.reopen().unwrap()))
        .spawn()
        .expect("spawn upload");
    Background { child, out, err }
}

fn finish(mut bg: Background) -> Run {
    let status = bg.child.wait().expect("wait for upload");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(bg.out.path()).unwrap(),
        stderr: std::fs::read_to_string(bg.err.path()).unwrap(),
    }
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

fn dir_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------- concurrency

#[test]
fn twenty_concurrent_uploaders_into_one_job_run_store_each_result_once() {
    let server = TestServer::start();
    let api = server.api();
    let (launch, job_run) = start_job_run(&generic_job(server.cli(), "concurrent"));
    let root = server.work_dir().join("parallel");
    let dirs: Vec<PathBuf> = (0..20)
        .map(|k| {
            let d = root.join(format!("shard-{k}"));
            generate_results(&d, &format!("shard{k}"), 500);
            d
        })
        .collect();
    let cli = server.cli().env("ALLURE_JOB_RUN_ID", job_run);
    let started = Instant::now();
    let children: Vec<Background> = dirs
        .iter()
        .map(|d| spawn_upload(&cli, &["upload", dir_str(d)]))
        .collect();
    for c in children {
        finish(c).ok();
    }
    eprintln!("20 x 500 results uploaded in {:?}", started.elapsed());

    assert_exact(&api, launch, 10_000);
    let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    assert_eq!(api.statistic(launch), expected_statistic(&refs));
    assert_eq!(api.job_runs(launch).len(), 1);
    assert_eq!(api.launches(1).len(), 1);
}

// ---------------------------------------------------------------- crashes

#[test]
fn server_killed_twice_during_an_upload_the_upload_still_finishes_exactly() {
    let data = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(Some(data.path()), &[]);
    // One endpoint for the client; the proxy follows the restarted server.
    let proxy = FaultProxy::start(&server.url, false, &[]);
    let cli = Cli::new(&proxy.url, TOKEN);
    let (launch, job_run) = start_job_run(&generic_job(cli.clone(), "crash"));
    // Outside the server's directory, which goes with the killed server.
    let work = tempfile::tempdir().unwrap();
    let results = work.path().join("crash-results");
    generate_results(&results, "crash", 10_000);

    let mut upload = spawn_upload(
        &cli.clone().env("ALLURE_JOB_RUN_ID", job_run),
        &["upload", dir_str(&results), "-o", "json"],
    );
    for threshold in [2_500, 6_000] {
        wait_for_count(&server.api(), launch, threshold, &mut upload);
        // SIGKILL, then a new server on the same data; the proxy switches to it.
        server.kill();
        server = TestServer::start_in(Some(data.path()), &[]);
        proxy.set_backend(&server.url);
    }
    // The client's retries (backoff up to about 6 s per request) outlast the
    // restarts: the same upload finishes by itself, no spool, no resume.
    let run = finish(upload).ok();
    assert_eq!(json_of(&run)["results"], 10_000, "{}", run.stderr);
    assert!(!results.join(".onelaunch-spool").exists());

    let api = server.api();
    let stored = assert_exact(&api, launch, 10_000);
    assert_attachments_stored(&api, &stored, 1_000);
    assert_eq!(api.statistic(launch), expected_statistic(&[&results]));
    let runs = api.job_runs(launch);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["resultCount"], 10_000, "{}", runs[0]);
    // The launch still works: it can be closed, and shows what it holds.
    cli.run(&["launch", "close", &launch.to_string()]).ok();
    let show = cli.run(&["launch", "show", &launch.to_string()]).ok();
    assert!(show.stdout.contains("Results: 10000"), "{}", show.stdout);
}

// ---------------------------------------------------------------- a lossy network

#[test]
fn proxy_dropping_one_connection_in_ten_loses_and_duplicates_nothing() {
    let server = TestServer::start();
    let api = server.api();
    let proxy = FaultProxy::start(&server.url, true, &[]);
    let cli = Cli::new(&proxy.url, TOKEN);
    let results = server.work_dir().join("lossy");
    generate_results(&results, "lossy", 3_000);
    // Batches of 25 results: enough requests (about 140) for the proxy's
    // faults to meet every kind of request, the attachments' bulk ones too.
    let run = generic_job(cli, "lossy")
        .run(&["upload", dir_str(&results), "--size", "25", "-o", "json"])
        .ok();
    let out = json_of(&run);
    let launch = out["launchId"].as_i64().unwrap();
    eprintln!(
        "{} connections, {} dropped",
        proxy.connections(),
        proxy.dropped()
    );
    assert!(
        proxy.dropped() >= 5,
        "the proxy dropped {}",
        proxy.dropped()
    );
    assert_eq!(out["results"], 3_000);
    assert_eq!(out["attachments"], 300);
    let stored = assert_exact(&api, launch, 3_000);
    assert_attachments_stored(&api, &stored, 300);
    assert_eq!(api.statistic(launch), expected_statistic(&[&results]));
    assert_eq!(api.job_runs(launch).len(), 1);
    assert_eq!(api.launches(1).len(), 1);
}

// ---------------------------------------------------------------- the spool

/// The `Resume with:` command an upload printed.
fn resume_command(run: &Run) -> String {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("Resume with: "))
        .unwrap_or_else(|| panic!("no resume command:\n{}", run.stderr))
        .to_string()
}

#[test]
fn unreachable_server_spools_and_resume_sends_exactly_the_rest_once() {
    let data = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(Some(data.path()), &[]);
    let proxy = FaultProxy::start(&server.url, false, &["\"uuid\":\"spool-"]);
    let cli = Cli::new(&proxy.url, TOKEN);
    let (launch, job_run) = start_job_run(&generic_job(cli.clone(), "spool"));
    let work = tempfile::tempdir().unwrap();
    let results = work.path().join("spool-results");
    generate_results(&results, "spool", 3_000);
    let cli = cli.env("ALLURE_JOB_RUN_ID", job_run);

    // The server dies for good in the middle of the upload.
    // Smaller batches, fewer in flight: the upload is surely not over at 700.
    let mut upload = spawn_upload(
        &cli,
        &[
            "upload",
            dir_str(&results),
            "--size",
            "50",
            "--concurrency",
            "2",
            "-o",
            "json",
        ],
    );
    wait_for_count(&server.api(), launch, 700, &mut upload);
    proxy.set_backend(DEAD);
    server.kill();
    let run = finish(upload).code(8);
    let spooled = json_of(&run);
    let delivered = spooled["results"]
        .as_u64()
        .unwrap_or_else(|| panic!("{}\n{}", run.stdout, run.stderr)) as usize;
    let spool = results.join(".onelaunch-spool");
    assert_eq!(spooled["spool"], dir_str(&spool));
    assert!(spool.join("onelaunch-spool.json").is_file());
    assert!(
        run.stderr.contains("Spooled: the server was unreachable"),
        "{}",
        run.stderr
    );
    let command = resume_command(&run);
    assert_eq!(
        command,
        format!("onelaunch upload --resume --spool {}", spool.display())
    );
    assert!(delivered < 3_000, "{delivered}");
    // The manifest names the target, never the token.
    let manifest = std::fs::read_to_string(spool.join("onelaunch-spool.json")).unwrap();
    assert!(!manifest.contains(TOKEN));
    let m: Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(m["launchId"], launch);
    assert_eq!(m["jobRunId"], job_run);
    assert_eq!(m["endpoint"], proxy.url.as_str());
    // The spool keeps undelivered results only; it is never read as results.
    let kept = count_files(&spool.join("files/0"), "-result.json");
    assert!(
        kept <= 3_000 - delivered + 400,
        "{kept} kept, {delivered} delivered"
    );

    // Back on the same data; the printed command sends exactly the rest.
    server = TestServer::start_in(Some(data.path()), &[]);
    proxy.set_backend(&server.url);
    let api = server.api();
    let before = result_count(&api, launch) as usize;
    assert!(before >= delivered && before < 3_000, "{before}");
    let sent_before = proxy.count(0);
    let resumed = cli.bash(&format!("{command} -o json")).ok();
    let r = json_of(&resumed);
    let sent = proxy.count(0) - sent_before;
    assert_eq!(
        r["results"].as_u64().map(|n| n as usize),
        Some(3_000 - delivered),
        "{}\n{}",
        resumed.stdout,
        resumed.stderr
    );
    assert_eq!(sent, 3_000 - delivered, "results sent by the resume");
    assert!(!spool.exists(), "the spool is removed");
    assert_exact(&api, launch, 3_000);
    assert_eq!(api.statistic(launch), expected_statistic(&[&results]));
    assert_eq!(api.job_runs(launch).len(), 1);
    assert_attachments_stored(&api, &all_results(&api, launch), 300);

    // A second resume finds nothing and sends nothing.
    let again = cli.bash(&command).ok();
    assert!(
        again.stdout.contains("Nothing to resume"),
        "{}",
        again.stdout
    );
    assert_eq!(proxy.count(0) - sent_before, sent);
    assert_exact(&api, launch, 3_000);
}

#[test]
fn server_down_from_the_start_spools_everything_and_the_next_upload_sends_it() {
    let proxy = FaultProxy::start(DEAD, false, &["\"uuid\":\"early-"]);
    let cli = generic_job(Cli::new(&proxy.url, TOKEN), "early");
    let work = tempfile::tempdir().unwrap();
    let results = work.path().join("results");
    generate_results(&results, "early", 250);
    let spool = work.path().join("kept");
    let run = cli
        .run(&["upload", dir_str(&results), "--spool", dir_str(&spool)])
        .code(8);
    assert_eq!(
        resume_command(&run),
        format!("onelaunch upload --resume --spool {}", spool.display())
    );
    let m: Value =
        serde_json::from_slice(&std::fs::read(spool.join("onelaunch-spool.json")).unwrap())
            .unwrap();
    assert_eq!(m["launchId"], Value::Null, "no launch could be created");
    assert_eq!(count_files(&spool.join("files/0"), "-result.json"), 250);

    // The server comes up; the next upload of the same results (same CI job
    // run) finds the spool, creates the job run it meant to, and sends it once.
    let server = TestServer::start();
    proxy.set_backend(&server.url);
    let out = cli
        .env("ONELAUNCH_SPOOL", dir_str(&spool))
        .run(&["upload", dir_str(&results), "-o", "json"])
        .ok();
    let out = json_of(&out);
    assert_eq!(out["results"], 250);
    assert_eq!(proxy.count(0), 250, "each result sent once");
    assert!(!spool.exists());
    let api = server.api();
    let launch = out["launchId"].as_i64().unwrap();
    assert_exact(&api, launch, 250);
    let runs = api.job_runs(launch);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["stage"], "finished", "{}", runs[0]);
    assert_eq!(api.launches(1).len(), 1);
}

#[test]
fn watch_runs_the_tests_while_the_server_is_down_and_spools_their_results() {
    let proxy = FaultProxy::start(DEAD, false, &[]);
    let cli = generic_job(Cli::new(&proxy.url, TOKEN), "watched");
    let work = tempfile::tempdir().unwrap();
    let produced = work.path().join("produced");
    generate_results(&produced, "watched", 120);
    let results = work.path().join("results");
    let script = format!(
        "cp {}/* {}/ && echo tests ran",
        dir_str(&produced),
        dir_str(&results)
    );
    let run = cli
        .run(&[
            "watch",
            "--results",
            dir_str(&results),
            "--interval",
            "0.1",
            "--",
            "bash",
            "-c",
            &script,
        ])
        .code(8);
    assert!(run.stdout.contains("tests ran"), "{}", run.stdout);
    assert_eq!(count_files(&results, "-result.json"), 120);
    let command = resume_command(&run);

    let server = TestServer::start();
    proxy.set_backend(&server.url);
    let out = json_of(&cli.bash(&format!("{command} -o json")).ok());
    assert_eq!(out["results"], 120);
    let launch = out["launchId"].as_i64().unwrap();
    let api = server.api();
    assert_exact(&api, launch, 120);
    assert_eq!(api.statistic(launch), expected_statistic(&[&produced]));
    assert_eq!(api.job_runs(launch)[0]["stage"], "finished");
    assert!(!results.join(".onelaunch-spool").exists());
}

// ---------------------------------------------------------------- CI re-runs

fn write_attempt(dir: &Path, attempt: u32, statuses: &[&str], junit_outcomes: &[bool]) {
    std::fs::create_dir_all(dir).unwrap();
    let base = 1_700_000_000_000i64 + i64::from(attempt) * 3_600_000;
    for (i, status) in statuses.iter().enumerate() {
        let uuid = format!("a{attempt}-{i}");
        let v = serde_json::json!({
            "uuid": uuid, "historyId": format!("h-{i}"), "name": format!("test {i}"),
            "fullName": format!("shop.test_{i}"), "status": status,
            "start": base + i as i64, "stop": base + i as i64 + 50,
        });
        std::fs::write(dir.join(format!("{uuid}-result.json")), v.to_string()).unwrap();
    }
    let stamp = if attempt == 1 {
        "2023-11-14T22:00:00"
    } else {
        "2023-11-14T23:00:00"
    };
    let mut xml = format!(
        r#"<testsuite name="api" tests="{}" timestamp="{stamp}">"#,
        junit_outcomes.len()
    );
    for (i, ok) in junit_outcomes.iter().enumerate() {
        xml.push_str(&format!(
            r#"<testcase classname="api.Orders" name="case_{i}" time="0.1">{}</testcase>"#,
            if *ok {
                ""
            } else {
                r#"<failure message="boom">trace</failure>"#
            }
        ));
    }
    xml.push_str("</testsuite>");
    std::fs::write(dir.join("TEST-api.xml"), xml).unwrap();
}

#[test]
fn github_rerun_attempt_two_adds_retries_and_decides_the_statuses() {
    let server = TestServer::start();
    let api = server.api();
    let proxy = FaultProxy::start(&server.url, false, &[r#"{"key":"CI_ATTEMPT","value":"2"}"#]);
    let work = tempfile::tempdir().unwrap();
    let first = work.path().join("attempt-1");
    let second = work.path().join("attempt-2");
    write_attempt(
        &first,
        1,
        &["failed", "failed", "passed", "broken"],
        &[false, true, false],
    );
    write_attempt(
        &second,
        2,
        &["passed", "passed", "passed", "passed"],
        &[true, true, true],
    );
    let github = Cli::new(&proxy.url, TOKEN).github("7001", "tests");

    let one = json_of(&github.run(&["upload", dir_str(&first), "-o", "json"]).ok());
    assert_eq!(one["results"], 7);
    let launch = one["launchId"].as_i64().unwrap();
    assert_eq!(api.statistic(launch)["failed"], 4);
    assert_eq!(proxy.count(0), 0);

    // The re-run: same GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT=2, other outcomes.
    let rerun = github.env("GITHUB_RUN_ATTEMPT", "2");
    let two = json_of(&rerun.run(&["upload", dir_str(&second), "-o", "json"]).ok());
    assert_eq!(two["launchId"], launch, "the re-run joins the same launch");
    assert_eq!(two["jobRunId"], one["jobRunId"], "and the same job run");
    assert_eq!(
        two["results"], 7,
        "JUnit results of attempt 2 are not dropped"
    );
    assert!(proxy.count(0) >= 1, "the session records CI_ATTEMPT=2");

    let results = assert_exact(&api, launch, 14);
    let mut by_test: BTreeMap<String, Vec<(bool, &str)>> = BTreeMap::new();
    for r in &results {
        by_test
            .entry(r["fullName"].as_str().unwrap().to_string())
            .or_default()
            .push((r["retry"].as_bool().unwrap(), r["status"].as_str().unwrap()));
    }
    assert_eq!(by_test.len(), 7, "{by_test:?}");
    for (test, attempts) in &by_test {
        let latest: Vec<_> = attempts.iter().filter(|(retry, _)| !retry).collect();
        assert_eq!(attempts.len(), 2, "{test}: {attempts:?}");
        assert_eq!(latest.len(), 1, "{test}: one latest attempt");
        assert_eq!(latest[0].1, "passed", "{test}: attempt 2 decides");
    }
    for r in &results {
        if r["uuid"].as_str().unwrap().starts_with("a1-") {
            assert_eq!(r["retry"], true, "attempt 1 stays visible as a retry");
        }
    }
    assert_eq!(
        api.statistic(launch),
        BTreeMap::from([("passed".to_string(), 7)])
    );
    assert_eq!(api.job_runs(launch).len(), 1);
    assert_eq!(api.launches(1).len(), 1);

    // Sending attempt 2 again changes nothing.
    let again = json_of(&rerun.run(&["upload", dir_str(&second), "-o", "json"]).ok());
    assert_eq!(again["launchId"], launch);
    assert_exact(&api, launch, 14);
}
