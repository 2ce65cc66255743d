//! `onelaunch server backup|restore` and the start-up check of the secret key:
//! a server is backed up while it runs, its data directory wiped, restored,
//! and everything is back (counts, attachment bytes, a stored credential that
//! still triggers a run); a server whose key does not match its stored
//! credentials refuses to start and says what to restore.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::pg::PgCluster;
use crate::support::*;

const CREDENTIAL: &str = "ghp_backupRestoreCredential0123456789";
const JOB: &str = "acme/shop_CI";

/// Stands in for the GitHub API: records (path, Authorization) of each request
/// and answers 204.
struct Provider {
    url: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Provider {
    fn start() -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let rec = seen.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let (mut auth, mut len) = (String::new(), 0usize);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.trim_end().split_once(':') {
                        match k.trim().to_ascii_lowercase().as_str() {
                            "authorization" => auth = v.trim().to_string(),
                            "content-length" => len = v.trim().parse().unwrap_or(0),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                rec.lock().unwrap().push((path, auth));
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
            }
        });
        Provider { url, seen }
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every launch, result and attachment the server holds, with the sha256 of
/// each attachment's downloaded bytes.
fn snapshot(server: &TestServer) -> Snapshot {
    let api = server.api();
    let http = reqwest::blocking::Client::new();
    let mut launches = api.launches(1);
    launches.sort_by_key(|l| l["id"].as_i64());
    launches
        .into_iter()
        .map(|l| {
            let id = l["id"].as_i64().unwrap();
            let mut results = api.results(id);
            results.sort_by_key(|r| r["id"].as_i64());
            let results = results
                .into_iter()
                .map(|r| {
                    let rid = r["id"].as_i64().unwrap();
                    let full = api.get(&format!("/api/testresult/{rid}"));
                    let atts = full["attachments"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| {
                            let aid = a["id"].as_i64().unwrap();
                            let bytes = http
                                .get(format!("{}/api/attachment/{aid}/content", server.url))
                                .header("Authorization", format!("api-token {TOKEN}"))
                                .send()
                                .unwrap();
                            assert_eq!(bytes.status().as_u16(), 200, "attachment {aid}");
                            (aid, sha256(&bytes.bytes().unwrap()))
                        })
                        .collect();
                    (full, atts)
                })
                .collect();
            (json_without(&l, &["url"]), results)
        })
        .collect()
}

type Snapshot = Vec<(Value, Vec<(Value, Vec<(i64, String)>)>)>;

/// Launch by launch, result by result (short messages on a difference).
fn assert_same(after: &Snapshot, before: &Snapshot) {
    assert_eq!(after.len(), before.len(), "launches");
    for ((la, ra), (lb, rb)) in after.iter().zip(before) {
        assert_eq!(la, lb);
        assert_eq!(ra.len(), rb.len(), "results of launch {}", lb["id"]);
        for (a, b) in ra.iter().zip(rb) {
            assert_eq!(a.0, b.0, "result {}", b.0["id"]);
            assert_eq!(a.1, b.1, "attachments of result {}", b.0["id"]);
        }
    }
}

fn json_without(v: &Value, keys: &[&str]) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

/// Three launches with results and attachments (one closed: the job has run;
/// one with an attachment over 64 KiB), and the job configured to trigger GitHub with a stored credential.
fn populate(server: &TestServer, provider: &Provider) {
    server
        .cli()
        .github("5001", "tests")
        .run(&[
            "upload",
            fixture("tests/fixtures/allure-pytest").to_str().unwrap(),
            "--launch-name",
            "Nightly",
        ])
        .ok();
    let api = server.api();
    let first = api.launches(1)[0]["id"].as_i64().unwrap();
    server
        .cli()
        .run(&["launch", "close", &first.to_string()])
        .ok();
    server
        .cli()
        .gitlab("6001")
        .run(&[
            "upload",
            fixture("tests/fixtures/junit/pytest-junit.xml")
                .to_str()
                .unwrap(),
        ])
        .ok();
    // The fixtures' attachments are small (rows of the database); one over
    // 64 KiB is a file of the blob store.
    let large = tempfile::tempdir().unwrap();
    let screenshot: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(large.path().join("screen-attachment.png"), screenshot).unwrap();
    let result = serde_json::json!({
        "uuid": "large-1", "historyId": "large", "name": "large screenshot",
        "fullName": "backup.large", "status": "passed",
        "start": 1_700_000_000_000i64, "stop": 1_700_000_000_100i64,
        "attachments": [{"name": "screen", "source": "screen-attachment.png", "type": "image/png"}],
    });
    std::fs::write(large.path().join("large-1-result.json"), result.to_string()).unwrap();
    server
        .cli()
        .gitlab("6002")
        .run(&["upload", large.path().to_str().unwrap()])
        .ok();
    configure(server, &provider.url);
}

fn configure(server: &TestServer, url: &str) {
    let job = server.api().get("/api/project/1/job");
    let job = job
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["externalId"] == JOB)
        .unwrap_or_else(|| panic!("no job {JOB}: {job}"))["id"]
        .to_string();
    let r = server
        .cli()
        .env("GH_TOKEN", CREDENTIAL)
        .run(&[
            "job",
            "configure",
            &job,
            "--can-run-tests",
            "true",
            "--integration",
            "github",
            "--url",
            url,
            "--repository",
            "acme/shop",
            "--workflow",
            "tests.yml",
            "--ref",
            "main",
            "--credential-env",
            "GH_TOKEN",
        ])
        .ok();
    assert!(r.stdout.contains("credential stored"), "{}", r.all());
}

/// Runs one test case of the GitHub job; the provider must get the credential.
fn trigger(server: &TestServer, provider: &Provider) {
    let api = server.api();
    let jobs = api.get("/api/project/1/job");
    let job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["externalId"] == JOB)
        .unwrap()["id"]
        .clone();
    let cases = api.get("/api/testcase?size=1000");
    let case = cases["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["job"]["id"] == job)
        .unwrap_or_else(|| panic!("no case of job {job}: {cases}"))["id"]
        .to_string();
    provider.seen.lock().unwrap().clear();
    server
        .cli()
        .run(&[
            "testcase",
            "run",
            "--case",
            &case,
            "--launch-name",
            "After restore",
        ])
        .ok();
    let seen = provider.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![(
            "/repos/acme/shop/actions/workflows/tests.yml/dispatches".to_string(),
            format!("Bearer {CREDENTIAL}")
        )]
    );
}

fn onelaunch(args: &[&str]) -> Run {
    Command::new(bin())
        .args(args)
        .env("ONELAUNCH_LOG", "info")
        .output()
        .unwrap()
        .into()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn key_hex(data: &Path) -> String {
    std::fs::read_to_string(data.join("secret.key"))
        .unwrap()
        .trim()
        .to_string()
}

fn assert_nothing_secret(out: &str, data: &Path) {
    for secret in [key_hex(data), TOKEN.to_string(), CREDENTIAL.to_string()] {
        assert!(!out.contains(&secret), "a secret in the output: {out}");
    }
}

#[test]
fn backup_while_running_then_wipe_and_restore_brings_everything_back() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let to = work.path().join("backup");
    let provider = Provider::start();
    let mut server = TestServer::start_in(Some(&data), &[]);
    populate(&server, &provider);
    let before = snapshot(&server);
    let attachments: usize = before
        .iter()
        .flat_map(|(_, rs)| rs.iter().map(|(_, a)| a.len()))
        .sum();
    assert!(attachments >= 2, "{before:?}");

    // Backed up while the server runs (and keeps its lock).
    let r = onelaunch(&["server", "backup", "--to", s(&to), "--data", s(&data)]).ok();
    assert_nothing_secret(&r.all(), &data);
    let results: usize = before.iter().map(|(_, rs)| rs.len()).sum();
    assert!(
        r.stdout.contains(&format!("launches: {}\n", before.len())),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("test results: {results}\n")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("attachments: {attachments}\n")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("stored credentials: 1\n"), "{}", r.stdout);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(to.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["database"], "sqlite");
    assert_eq!(manifest["counts"]["launches"], before.len());
    assert_eq!(manifest["missingBlobs"], serde_json::json!([]));
    assert!(manifest["migrations"]
        .as_array()
        .unwrap()
        .contains(&18.into()));
    assert_eq!(
        manifest["databaseSha256"].as_str().unwrap(),
        sha256(&std::fs::read(to.join("onelaunch.db")).unwrap())
    );
    assert_eq!(
        std::fs::read(to.join("secret.key")).unwrap(),
        std::fs::read(data.join("secret.key")).unwrap()
    );
    assert!(!std::fs::read_to_string(to.join("manifest.json"))
        .unwrap()
        .contains(&key_hex(&data)));
    // A non-empty directory is refused without --force.
    let r = onelaunch(&["server", "backup", "--to", s(&to), "--data", s(&data)]).code(1);
    assert!(
        r.stderr.contains("is not empty") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    // The server is running: a restore into its directory is refused.
    let r = onelaunch(&[
        "server",
        "restore",
        "--from",
        s(&to),
        "--data",
        s(&data),
        "--force",
    ])
    .code(1);
    assert!(
        r.stderr.contains("in use by another onelaunch server"),
        "{}",
        r.stderr
    );

    server.kill();
    let blob_files = blob_count(&data.join("blobs"));
    assert!(blob_files >= 1, "the large attachment is a file");
    std::fs::remove_dir_all(&data).unwrap();

    // A damaged backup is refused.
    let damaged = work.path().join("damaged");
    copy_dir(&to, &damaged);
    let mut db = std::fs::OpenOptions::new()
        .append(true)
        .open(damaged.join("onelaunch.db"))
        .unwrap();
    db.write_all(b"x").unwrap();
    let r = onelaunch(&[
        "server",
        "restore",
        "--from",
        s(&damaged),
        "--data",
        s(&data),
    ])
    .code(1);
    assert!(
        r.stderr.contains("does not match the manifest"),
        "{}",
        r.stderr
    );

    let r = onelaunch(&["server", "restore", "--from", s(&to), "--data", s(&data)]).ok();
    assert_nothing_secret(&r.all(), &data);
    assert!(
        r.stdout.contains(&format!("attachments: {attachments}\n")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("stored credentials: 1\n"), "{}", r.stdout);
    assert_eq!(blob_count(&data.join("blobs")), blob_files);
    let r = onelaunch(&["server", "restore", "--from", s(&to), "--data", s(&data)]).code(1);
    assert!(r.stderr.contains("is not empty"), "{}", r.stderr);

    let server = TestServer::start_in(Some(&data), &[]);
    assert_same(&snapshot(&server), &before);
    trigger(&server, &provider);
}

/// Blob files (`<aa>/<sha256>`) under a store or a backup.
fn blob_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|d| d.is_dir())
        .map(|d| std::fs::read_dir(d).unwrap().count())
        .sum()
}

fn wait_exit(mut cmd: Command) -> Run {
    cmd.env("ONELAUNCH_LOG", "info").output().unwrap().into()
}

fn start_cmd(data: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args([
        "server",
        "--listen",
        "127.0.0.1:0",
        "--data",
        s(data),
        "--init-token",
        TOKEN,
    ])
    .args(extra);
    cmd
}

#[test]
fn a_missing_or_other_key_with_stored_credentials_refuses_to_start() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let provider = Provider::start();
    let mut server = TestServer::start_in(Some(&data), &[]);
    populate(&server, &provider);
    server.kill();
    let key = data.join("secret.key");
    let original = std::fs::read(&key).unwrap();

    // Missing: refused (exit 1), nothing created in its place.
    std::fs::remove_file(&key).unwrap();
    let r = wait_exit(start_cmd(&data, &[])).code(1);
    assert!(
        r.stderr
            .contains("1 job credentials are stored sealed with another key")
            && r.stderr
                .contains(&format!("the secret key file {} is missing", key.display()))
            && r.stderr.contains(&format!(
                "restore {} from the backup taken with this database",
                key.display()
            ))
            && r.stderr.contains("--forget-stored-credentials"),
        "{}",
        r.stderr
    );
    assert!(!key.exists());

    // Another key: refused.
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    let r = wait_exit(start_cmd(&data, &[])).code(1);
    assert!(
        r.stderr.contains("is not the key they were sealed with"),
        "{}",
        r.stderr
    );

    // The right key again: it starts and the credential works.
    std::fs::write(&key, &original).unwrap();
    let mut server = TestServer::start_in(Some(&data), &[]);
    trigger(&server, &provider);
    server.kill();

    // The escape hatch: start with another key, the credentials cleared.
    std::fs::remove_file(&key).unwrap();
    let server = TestServer::start_in(Some(&data), &["--forget-stored-credentials"]);
    assert!(
        server.log().contains("cleared the stored job credentials"),
        "{}",
        server.log()
    );
    assert_ne!(std::fs::read(&key).unwrap(), original);
    configure(&server, &provider.url);
    trigger(&server, &provider);
}

#[test]
fn without_stored_credentials_a_missing_key_is_created() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let mut server = TestServer::start_in(Some(&data), &[]);
    server
        .cli()
        .run(&[
            "upload",
            fixture("tests/fixtures/allure-pytest").to_str().unwrap(),
        ])
        .ok();
    server.kill();
    let key = data.join("secret.key");
    let first = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let server = TestServer::start_in(Some(&data), &[]);
    assert_eq!(server.api().launches(1).len(), 1);
    assert_ne!(std::fs::read(&key).unwrap(), first);
}

fn pg_tool(tool: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join(tool).exists())
        .collect();
    dirs.sort();
    dirs.pop().unwrap().join(tool)
}

/// Runs the line of `text` that starts with `tool` (the exact command the
/// backup or restore printed) with Debian's PostgreSQL tools.
fn run_printed(text: &str, tool: &str) {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{tool} ")))
        .unwrap_or_else(|| panic!("no {tool} command in: {text}"));
    let dir = pg_tool(tool).parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-c", line])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn postgres_backup_writes_blobs_key_and_the_pg_dump_commands_that_restore_it() {
    let Some(pg) = PgCluster::start() else {
        return;
    };
    let url = pg.database("backup_src");
    let work = tempfile::tempdir().unwrap();
    let (data, to) = (work.path().join("data"), work.path().join("backup"));
    let provider = Provider::start();
    let mut server = TestServer::start_in(Some(&data), &["--database-url", &url]);
    populate(&server, &provider);
    let before = snapshot(&server);

    let with_password = url.replace("postgres@", "postgres:hunter2pw@");
    let r = onelaunch(&[
        "server",
        "backup",
        "--to",
        s(&to),
        "--data",
        s(&data),
        "--database-url",
        &with_password,
    ])
    .ok();
    assert_nothing_secret(&r.all(), &data);
    assert!(!r.all().contains("hunter2pw"), "{}", r.all());
    let notes = std::fs::read_to_string(to.join("POSTGRES.txt")).unwrap();
    assert!(!notes.contains("hunter2pw"));
    assert!(r
        .stdout
        .contains(notes.lines().find(|l| l.starts_with("pg_dump ")).unwrap()));
    assert_eq!(
        std::fs::read(to.join("secret.key")).unwrap(),
        std::fs::read(data.join("secret.key")).unwrap()
    );
    assert_eq!(
        blob_count(&to.join("blobs")),
        blob_count(&data.join("blobs"))
    );
    assert!(blob_count(&to.join("blobs")) >= 1, "the large attachment");
    // The printed dump command, run as printed.
    run_printed(&notes, "pg_dump");
    server.kill();

    let target = pg.database("backup_dst");
    let data2 = work.path().join("data2");
    let r = onelaunch(&[
        "server",
        "restore",
        "--from",
        s(&to),
        "--data",
        s(&data2),
        "--database-url",
        &target,
    ])
    .ok();
    run_printed(&r.stdout, "pg_restore");
    let server = TestServer::start_in(Some(&data2), &["--database-url", &target]);
    assert_same(&snapshot(&server), &before);
    trigger(&server, &provider);
}
