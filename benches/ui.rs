//! Web UI render benchmark: a real server with one launch of 10,000 results
//! (four job runs, 5% retried, failures with messages, attachments and steps)
//! plus a page of smaller launches, filled by the real CLI; then every page a
//! release manager opens is fetched over HTTP with a logged-in session and
//! timed (median, p95, max over the runs, server render plus transfer).
//! Then a launch of 100,000 tests (20 job runs, filled by the same upload
//! path) is added and its launch pages are timed the same way, against the
//! goal of a launch page under 100 ms (reported, not asserted). Last, a new
//! launch of 100,000 tests in one job run is uploaded while its launch page
//! is fetched again and again, as someone watching the upload would: those
//! renders read results the web UI's order does not hold yet
//! (`db::ui_order`).
//!
//! ```text
//! cargo bench --bench ui -- [--results N] [--jobs K] [--launches L] [--runs R]
//!                            [--big N] [--big-jobs K] [--only-big] [--watch N]
//!                            [--backend sqlite|postgres] [--database-url URL] [--data DIR]
//! ```
//!
//! `--big 0` skips the large launch, `--watch 0` the watched upload; `--only-big` skips the 10,000-test
//! launch (and its pages). `--database-url` uses that (PostgreSQL) database
//! instead of a throwaway cluster. `--data DIR` keeps the server's data in
//! DIR and notes there (`bench-ui.txt`) which launches it filled: a later run
//! with the same `--data DIR` (and the same `--database-url`, if any) fills
//! nothing it already has and times the same launches again; it first empties
//! the stored launch overviews (`ui_launch_stats`, with the `sqlite3` or
//! `psql` command) so the "first view" figures are first views again. Change
//! `--results`/`--big` only with a new DIR.

mod common;
#[path = "../tests/e2e/pg.rs"]
mod pg;

use common::{bin, start_server, TOKEN};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

struct Args {
    results: usize,
    jobs: usize,
    launches: usize,
    runs: usize,
    /// Tests in the large launch (0: none).
    big: usize,
    big_jobs: usize,
    /// Tests in the launch watched while it is uploaded (0: none).
    watch: usize,
    backend: String,
    /// An existing database instead of a throwaway PostgreSQL cluster.
    database_url: Option<String>,
    /// Skip the 10,000-test launch.
    only_big: bool,
    /// Keep the server's data here (to look at it afterwards, or to time the
    /// same launches again without filling them).
    data: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        results: 10_000,
        jobs: 4,
        launches: 30,
        runs: 30,
        big: 100_000,
        big_jobs: 20,
        watch: 100_000,
        backend: "sqlite".into(),
        database_url: None,
        only_big: false,
        data: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--results" => a.results = v.parse().expect("--results N"),
            "--jobs" => a.jobs = v.parse().expect("--jobs K"),
            "--launches" => a.launches = v.parse().expect("--launches L"),
            "--runs" => a.runs = v.parse().expect("--runs R"),
            "--big" => a.big = v.parse().expect("--big N"),
            "--big-jobs" => a.big_jobs = v.parse().expect("--big-jobs K"),
            "--watch" => a.watch = v.parse().expect("--watch N"),
            "--backend" => a.backend = v,
            "--database-url" => a.database_url = Some(v),
            "--data" => a.data = Some(PathBuf::from(v)),
            "--only-big" => {
                a.only_big = true;
                i += 1;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// `n` results; every 20th test has an earlier failed attempt, every 7th
/// fails with a message and trace, every 10th has a small attachment.
fn generate(dir: &Path, prefix: &str, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let write = |uuid: &str, hist: &str, i: usize, status: &str, start: u64| {
        let att = if i % 10 == 0 {
            let name = format!("{uuid}-attachment.txt");
            std::fs::write(dir.join(&name), format!("log of {uuid}\n")).unwrap();
            format!(r#","attachments":[{{"name":"log","source":"{name}","type":"text/plain"}}]"#)
        } else {
            String::new()
        };
        let details = if status != "passed" {
            format!(
                r#","statusDetails":{{"message":"AssertionError: expected {i} to equal {}","trace":"AssertionError\n    at test_{i} (suite.js:{i}:7)"}}"#,
                i + 1
            )
        } else {
            String::new()
        };
        let json = format!(
            r#"{{"uuid":"{uuid}","historyId":"{hist}","name":"test {i} of {prefix}","fullName":"bench.{prefix}.test_{i}","status":"{status}","start":{start},"stop":{e},"labels":[{{"name":"suite","value":"{prefix}"}},{{"name":"feature","value":"area {f}"}}],"parameters":[{{"name":"i","value":"{i}"}}],"steps":[{{"name":"arrange","status":"passed","start":{start},"stop":{m}}},{{"name":"act and assert","status":"{status}","start":{m},"stop":{e}}}]{details}{att}}}"#,
            e = start + 50,
            m = start + 20,
            f = i % 12,
        );
        std::fs::write(dir.join(format!("{uuid}-result.json")), json).unwrap();
    };
    for i in 0..n {
        let uuid = format!("{prefix}-{i}");
        let hist = format!("h-{prefix}-{i}");
        let status = if i % 7 == 0 { "failed" } else { "passed" };
        let start = 1_700_000_000_000u64 + (i as u64) * 100;
        if i % 20 == 0 {
            write(&format!("{uuid}-retry"), &hist, i, "broken", start - 10_000);
        }
        write(&uuid, &hist, i, status, start);
    }
}

fn cli(endpoint: &str, extra: &[(&str, String)]) -> Command {
    let mut c = Command::new(bin());
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ALLURE_ENDPOINT", endpoint)
        .env("ALLURE_TOKEN", TOKEN)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        c.env(k, v);
    }
    c
}

fn create_launch(endpoint: &str, name: &str) -> String {
    let out = cli(endpoint, &[])
        .args(["launch", "create", "--launch-name", name, "--format", "ID"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Uploads each directory as its own GitLab pipeline into the launch.
fn upload(endpoint: &str, launch: &str, dirs: &[PathBuf], first_pipeline: usize) {
    let children: Vec<Child> = dirs
        .iter()
        .enumerate()
        .map(|(j, d)| start_upload(endpoint, launch, d, first_pipeline + j))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "an upload failed");
    }
}

/// Starts uploading `dir` as GitLab pipeline `n` into the launch.
fn start_upload(endpoint: &str, launch: &str, dir: &Path, n: usize) -> Child {
    cli(
        endpoint,
        &[
            ("GITLAB_CI", "true".into()),
            ("CI_PROJECT_ID", format!("{}", n % 4)),
            ("CI_PROJECT_NAME", format!("suite-{}", n % 4)),
            (
                "CI_PIPELINE_URL",
                format!("https://gitlab.example.com/p/-/pipelines/{n}"),
            ),
            ("CI_PIPELINE_ID", format!("{}", 1000 + n)),
            ("ALLURE_LAUNCH_ID", launch.to_string()),
        ],
    )
    .arg("upload")
    .arg(dir)
    .spawn()
    .unwrap()
}

struct Session {
    http: reqwest::blocking::Client,
    url: String,
    cookie: String,
}

impl Session {
    fn login(url: &str) -> Session {
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = http.get(format!("{url}/login")).send().unwrap();
        let login = cookie_value(&r, "ol_login");
        let r = http
            .post(format!("{url}/login"))
            .header("Cookie", format!("ol_login={login}"))
            .form(&[("token", TOKEN), ("csrf", &login)])
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "login");
        let session = cookie_value(&r, "ol_session");
        Session {
            http,
            url: url.to_string(),
            cookie: format!("ol_session={session}"),
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header("Cookie", &self.cookie)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().unwrap())
    }
}

fn cookie_value(r: &reqwest::blocking::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_string()
}

/// First number after `marker` in `html` (e.g. an id in a link).
fn first_id(html: &str, marker: &str) -> String {
    let i = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in page"))
        + marker.len();
    html[i..].chars().take_while(char::is_ascii_digit).collect()
}

/// What a `--data` directory already holds: `key=value` lines of
/// `bench-ui.txt` (`smalls`, `launch`/`tests`, `big`/`big_tests`).
struct Marker {
    path: PathBuf,
    values: Vec<(String, String)>,
}

impl Marker {
    fn load(data: &Path) -> Marker {
        let path = data.join("bench-ui.txt");
        let values = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Marker { path, values }
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn set(&mut self, key: &str, value: impl ToString) {
        self.values.retain(|(k, _)| k != key);
        self.values.push((key.to_string(), value.to_string()));
        let text: String = self
            .values
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(&self.path, text).unwrap();
    }
}

fn main() {
    let a = args();
    let work = tempfile::tempdir().unwrap();
    let cluster;
    let mut throwaway = false;
    let db = if let Some(url) = &a.database_url {
        Some(url.clone())
    } else if a.backend == "postgres" {
        cluster = pg::PgCluster::start().expect("PostgreSQL (scripts/tools/postgres.sh)");
        throwaway = true;
        Some(cluster.database("bench_ui"))
    } else {
        None
    };
    let data = a.data.clone().unwrap_or_else(|| work.path().join("data"));
    std::fs::create_dir_all(&data).unwrap();
    // A throwaway cluster's database is new: nothing to reuse.
    let mut marker = Marker::load(&data);
    if throwaway {
        marker.values.clear();
    }
    if !marker.values.is_empty() {
        // Reused data: the stored overviews go, so first views are first views.
        let delete = "DELETE FROM ui_launch_stats";
        let ok = match &db {
            Some(url) => Command::new("psql")
                .args([url.as_str(), "-qc", delete])
                .status(),
            None => Command::new("sqlite3")
                .arg(data.join("onelaunch.db"))
                .arg(delete)
                .status(),
        }
        .map(|s| s.success())
        .unwrap_or(false);
        println!(
            "reusing {} ({}){}",
            data.display(),
            marker
                .values
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            if ok {
                ""
            } else {
                "; stored overviews NOT emptied (no sqlite3/psql): first views are warm"
            }
        );
    }
    let server = start_server(&data, db.as_deref());
    let url = server.url.clone();

    // Older, smaller launches, so the list has full pages.
    let t = Instant::now();
    if marker.get("smalls").is_none() {
        for l in 0..a.launches {
            let d = work.path().join(format!("small{l}"));
            generate(&d, &format!("s{l}"), 100);
            let id = create_launch(&url, &format!("Nightly {l}"));
            upload(&url, &id, &[d], 100 + l);
        }
        marker.set("smalls", a.launches);
    }
    let s = Session::login(&url);
    if !a.only_big {
        main_launch(&a, &s, &url, work.path(), &mut marker, t);
    }
    if a.big > 0 {
        big_launch(&a, &s, &url, work.path(), &mut marker);
    }
    if a.watch > 0 {
        watched_upload(&a, &s, &url, work.path());
    }
    let mut server = server;
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// The launch of `a.results` tests over `a.jobs` job runs (filled unless the
/// data directory has it) and every page a release manager opens, timed.
fn main_launch(a: &Args, s: &Session, url: &str, work: &Path, marker: &mut Marker, t: Instant) {
    let per_job = a.results / a.jobs.max(1);
    let tests = per_job * a.jobs;
    let launch = match marker.get("launch") {
        Some(id) => id.to_string(),
        None => {
            let dirs: Vec<PathBuf> = (0..a.jobs)
                .map(|j| {
                    let d = work.join(format!("job{j}"));
                    generate(&d, &format!("j{j}"), per_job);
                    d
                })
                .collect();
            let launch = create_launch(url, "Release validation");
            upload(url, &launch, &dirs, 0);
            let stored = tests + (per_job.div_ceil(20)) * a.jobs;
            println!(
                "filled in {:.1} s: launch {launch} with {tests} tests ({stored} results stored), {} job runs; {} older launches of 100 tests ({})",
                t.elapsed().as_secs_f64(),
                a.jobs,
                a.launches,
                a.backend
            );
            marker.set("launch", &launch);
            marker.set("tests", tests);
            launch
        }
    };
    let tests: usize = marker.get("tests").map_or(tests, |v| v.parse().unwrap());

    // First views after the results changed: the overviews are computed (and
    // stored for the next views).
    let t = Instant::now();
    let (_, launch_page) = s.get(&format!("/launch/{launch}"));
    let cold_launch = t.elapsed().as_secs_f64() * 1000.0;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let t = Instant::now();
    s.get("/launches");
    let cold_list = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "first views after the results changed: launch {cold_launch:.1} ms, \
         then the launch list ({} other launches to count) {cold_list:.1} ms",
        a.launches.min(24)
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let job_run = first_id(&launch_page, "href=\"/jobrun/");
    let (_, failed) = s.get(&format!("/launch/{launch}?status=failed"));
    let failed_result = first_id(&failed, "href=\"/result/");
    let (_, attached) = s.get(&format!("/launch/{launch}?q=test+10+of+j0"));
    let attached_result = first_id(&attached, "href=\"/result/");
    // Pages are numbered from 0.
    let last_page = tests.max(1).div_ceil(100) - 1;
    let pages: Vec<(String, String)> = vec![
        ("launch list".into(), "/launches".into()),
        (
            "launch list, text filter".into(),
            "/launches?q=nightly+1".into(),
        ),
        (
            "launch (summary, job runs, results page 1)".into(),
            format!("/launch/{launch}"),
        ),
        (
            "launch, results page 50".into(),
            format!("/launch/{launch}?page=50"),
        ),
        (
            "launch, last results page".into(),
            format!("/launch/{launch}?page={last_page}"),
        ),
        (
            "launch, failed only".into(),
            format!("/launch/{launch}?status=failed"),
        ),
        (
            "launch, text search".into(),
            format!("/launch/{launch}?q=test+99"),
        ),
        (
            "launch, with retries".into(),
            format!("/launch/{launch}?retries=1&page=20"),
        ),
        (
            "live update (fragments)".into(),
            format!("/launch/{launch}/live"),
        ),
        ("job run".into(), format!("/jobrun/{job_run}")),
        (
            "job run, page 20".into(),
            format!("/jobrun/{job_run}?page=20"),
        ),
        (
            "failed result (retries, steps)".into(),
            format!("/result/{failed_result}"),
        ),
        (
            "result with attachment".into(),
            format!("/result/{attached_result}"),
        ),
        ("jobs".into(), "/jobs".into()),
        ("new test plan (test cases)".into(), "/plans/new".into()),
    ];
    time_pages(s, &pages, a.runs);
}

/// Fetches each page `runs` times (after two warm-ups) and prints a table
/// row per page; returns the medians in milliseconds.
/// Median, p95 and max of timings (at least one); sorts them.
fn spread(times: &mut [f64]) -> (f64, f64, f64) {
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    (pct(0.5), pct(0.95), times[times.len() - 1])
}

fn time_pages(s: &Session, pages: &[(String, String)], runs: usize) -> Vec<f64> {
    println!();
    println!("| page | median | p95 | max | size |");
    println!("|---|---:|---:|---:|---:|");
    let mut medians = Vec::new();
    for (name, path) in pages {
        for _ in 0..2 {
            s.get(path);
        }
        let mut times = Vec::with_capacity(runs);
        let mut size = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let (status, body) = s.get(path);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200, "{path}");
            size = body.len();
        }
        let (median, p95, max) = spread(&mut times);
        medians.push(median);
        println!(
            "| {name} (`{path}`) | {median:.1} ms | {p95:.1} ms | {max:.1} ms | {} KB |",
            size / 1024
        );
    }
    medians
}

/// A launch of `a.big` tests over `a.big_jobs` job runs (every 20th retried,
/// as the main launch), filled by the real CLI; its launch pages timed.
fn big_launch(a: &Args, s: &Session, url: &str, work: &Path, marker: &mut Marker) {
    let per_job = a.big / a.big_jobs.max(1);
    let tests = per_job * a.big_jobs.max(1);
    let stored = tests + per_job.div_ceil(20) * a.big_jobs.max(1);
    let launch = match marker.get("big") {
        Some(id) => {
            println!();
            println!("large launch {id}: reused");
            id.to_string()
        }
        None => {
            let t = Instant::now();
            let dirs: Vec<PathBuf> = (0..a.big_jobs.max(1))
                .map(|j| {
                    let d = work.join(format!("big{j}"));
                    generate(&d, &format!("b{j}"), per_job);
                    d
                })
                .collect();
            let generated = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let launch = create_launch(url, "Release validation (large)");
            upload(url, &launch, &dirs, 200);
            println!();
            println!(
                "large launch {launch}: {tests} tests ({stored} results stored), {} job runs; generated in {generated:.1} s, uploaded in {:.1} s",
                a.big_jobs.max(1),
                t.elapsed().as_secs_f64()
            );
            marker.set("big", &launch);
            marker.set("big_tests", tests);
            launch
        }
    };
    let tests: usize = marker
        .get("big_tests")
        .map_or(tests, |v| v.parse().unwrap());
    let t = Instant::now();
    let (status, page) = s.get(&format!("/launch/{launch}"));
    assert_eq!(status, 200);
    println!(
        "first view after the results changed: launch {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let job_run = first_id(&page, "href=\"/jobrun/");
    // Pages are numbered from 0.
    let last_page = tests.max(1).div_ceil(100) - 1;
    let pages: Vec<(String, String)> = vec![
        (
            "large launch (summary, job runs, results page 1)".into(),
            format!("/launch/{launch}"),
        ),
        (
            "large launch, results page 500".into(),
            format!("/launch/{launch}?page=500"),
        ),
        (
            "large launch, last results page".into(),
            format!("/launch/{launch}?page={last_page}"),
        ),
        (
            "large launch, failed only".into(),
            format!("/launch/{launch}?status=failed"),
        ),
        (
            "large launch, text search".into(),
            format!("/launch/{launch}?q=test+99"),
        ),
        (
            "large launch, with earlier attempts, page 500".into(),
            format!("/launch/{launch}?retries=1&page=500"),
        ),
        (
            "large launch, one job run".into(),
            format!("/launch/{launch}?jr={job_run}"),
        ),
        (
            "large launch, live update (fragments)".into(),
            format!("/launch/{launch}/live"),
        ),
        (
            "launch list (with the large launch)".into(),
            "/launches".into(),
        ),
    ];
    let medians = time_pages(s, &pages, a.runs);
    let m = medians[0];
    println!();
    println!(
        "goal: launch page of {tests} tests < 100 ms (reported, not asserted): median {m:.1} ms {}",
        if m < 100.0 { "PASS" } else { "MISS" }
    );
}

/// A new launch of `a.watch` tests in one job run, its launch page fetched
/// one request after another while the real CLI uploads it: what someone
/// watching the upload sees. Those renders read results stored after the
/// web UI's order was last settled (`db::ui_order`); the figures are server
/// render plus transfer on the two cores the upload also uses.
fn watched_upload(a: &Args, s: &Session, url: &str, work: &Path) {
    let dir = work.join("watched");
    generate(&dir, "w", a.watch);
    let launch = create_launch(url, "Release validation (being uploaded)");
    // The launch page, and its page of passed results: the largest group,
    // the one a render sorted whole before the order was settled.
    let paths = [
        format!("/launch/{launch}"),
        format!("/launch/{launch}?status=passed"),
    ];
    let started = Instant::now();
    let mut upload = start_upload(url, &launch, &dir, 300);
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    'watch: loop {
        for (k, path) in paths.iter().enumerate() {
            if let Some(status) = upload.try_wait().unwrap() {
                assert!(status.success(), "the watched upload failed");
                break 'watch;
            }
            let t = Instant::now();
            let (status, _) = s.get(path);
            times[k].push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200, "{path}");
        }
    }
    let took = started.elapsed().as_secs_f64();
    println!();
    println!(
        "watched upload of {} tests ({took:.1} s), renders during it:",
        a.watch
    );
    for (path, mut times) in paths.iter().zip(times) {
        let n = times.len();
        if n == 0 {
            println!("  `{path}`: none");
            continue;
        }
        let (median, p95, max) = spread(&mut times);
        println!(
            "  `{path}`: {n} renders, median {median:.1} ms, p95 {p95:.1} ms, max {max:.1} ms"
        );
    }
}
