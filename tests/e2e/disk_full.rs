//! A full disk: the server's data directory on a small tmpfs, filled up. The
//! server answers 503 `storage_full` with `Retry-After` (never 500), keeps
//! nothing half-written, and takes the same upload again once space is freed,
//! without a restart; the CLI retries, spools and exits 8, and
//! `upload --resume` delivers the rest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::*;

/// A tmpfs mounted on a temporary directory, unmounted when dropped (drop
/// the server using it first).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `16m`); `None` (after a loud notice)
    /// where mounting is not permitted, a failure under
    /// `ONELAUNCH_REQUIRE_RUNNERS=1`.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            other => {
                let msg = format!(
                    "disk_full: cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {other:?}"
                );
                if std::env::var("ONELAUNCH_REQUIRE_RUNNERS").is_ok_and(|v| v != "0") {
                    panic!("{msg} (ONELAUNCH_REQUIRE_RUNNERS=1)");
                }
                eprintln!("NOTICE: skipped: {msg}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system with a filler file until writes fail, then
    /// gives back `leave` bytes; answers the filler's path.
    fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0x5au8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        let _ = f.flush();
        f.set_len(written.saturating_sub(leave)).unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// `n` results `<prefix>-<i>`, each with its own attachment of `size` bytes.
fn results_with_attachments(dir: &Path, prefix: &str, n: usize, size: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let uuid = format!("{prefix}-{i}");
        let att = format!("{uuid}-attachment.bin");
        let mut bytes = format!("{uuid}\n").into_bytes();
        bytes.resize(size, (i % 251) as u8);
        std::fs::write(dir.join(&att), bytes).unwrap();
        let v = serde_json::json!({
            "uuid": uuid, "historyId": format!("h-{uuid}"), "name": format!("test {i}"),
            "fullName": format!("disk.{prefix}.test_{i}"), "status": "passed",
            "start": 1_700_000_000_000i64 + i as i64, "stop": 1_700_000_000_100i64 + i as i64,
            "attachments": [{"name": "blob", "source": att, "type": "application/octet-stream"}],
        });
        std::fs::write(dir.join(format!("{uuid}-result.json")), v.to_string()).unwrap();
    }
}

/// What the database answers to `sql`, read with the sqlite3 CLI.
fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 CLI (apt-get install sqlite3)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Attachments whose bytes were stored (a result declares its attachments
/// first; their rows have no digest until the bytes arrive).
const STORED: &str = "attachments WHERE sha256 IS NOT NULL";

fn count(db: &Path, table: &str) -> usize {
    sqlite(db, &format!("SELECT COUNT(*) FROM {table}"))
        .parse()
        .unwrap()
}

/// Every attachment row points at a stored blob of its size and digest (a
/// file, or a small blob in the database), and no temporary file is left in
/// the store.
fn assert_nothing_half_written(data: &Path) {
    let db = data.join("onelaunch.db");
    assert_eq!(sqlite(&db, "PRAGMA integrity_check"), "ok");
    let rows = sqlite(
        &db,
        "SELECT sha256 || ' ' || size FROM attachments WHERE sha256 IS NOT NULL",
    );
    for row in rows.lines() {
        let (sha, size) = row.split_once(' ').unwrap();
        let path = data.join("blobs").join(&sha[..2]).join(sha);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                let small = sqlite(
                    &db,
                    &format!("SELECT hex(bytes) FROM small_blobs WHERE sha256 = '{sha}'"),
                );
                assert!(
                    !small.is_empty(),
                    "{}: {e}, and not in small_blobs",
                    path.display()
                );
                hex::decode(small).unwrap()
            }
        };
        assert_eq!(bytes.len().to_string(), size, "{sha}");
        assert_eq!(hex::encode(Sha256::digest(&bytes)), sha);
    }
    let tmp = std::fs::read_dir(data.join("blobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(tmp, 0, "temporary files left in the store");
}

/// Neither a panic nor a 500 in the server's log; a full disk is a warning.
fn assert_no_internal_error(server: &TestServer) {
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("request failed"), "{log}");
    assert!(!log.contains("internal error"), "{log}");
    assert!(!log.contains("500 Internal Server Error"), "{log}");
    assert!(log.contains("storage full"), "{log}");
}

fn job(cli: Cli, run: &str) -> Cli {
    cli.envs(&[
        ("ALLURE_CI_TYPE", "shell"),
        ("ALLURE_JOB_UID", "disk-full"),
        ("ALLURE_JOB_RUN_UID", run),
    ])
}

fn start(data: &Path, extra: &[&str]) -> TestServer {
    let mut args = vec!["--storage-full-retry-after", "1s"];
    args.extend_from_slice(extra);
    TestServer::start_in(Some(data), &args)
}

/// The attachment store fills up: attachments are refused with 503
/// `storage_full` (the results themselves fit), the CLI spools them and exits
/// 8; once the filler is gone the resumed upload completes on the same
/// server process.
#[test]
fn attachments_on_a_full_disk_are_refused_spooled_and_resumed_without_restart() {
    // No reserve: the write itself hits ENOSPC. Room for the results' rows,
    // none for a 1 MiB attachment.
    attachments_refused_then_resumed(
        &["--min-free-space", "0"],
        640 * 1024,
        1024 * 1024,
        "os error 28",
    );
}

/// Below `--min-free-space` attachments are refused before a byte is
/// written, though they would fit; freed space lets them in.
#[test]
fn below_the_free_space_reserve_attachments_wait_for_space() {
    attachments_refused_then_resumed(
        &["--min-free-space", "8MiB"],
        4 << 20,
        16 * 1024,
        "below the reserve",
    );
}

fn attachments_refused_then_resumed(extra: &[&str], leave: u64, size: usize, cause: &str) {
    let Some(fs) = Tmpfs::mount("24m") else {
        return;
    };
    let data = fs.path().join("data");
    let server = start(&data, extra);
    let work = tempfile::tempdir().unwrap();
    let results = work.path().join("allure-results");
    let n = 12;
    results_with_attachments(&results, "full", n, size);
    let spool = work.path().join("spool");
    let filler = fs.fill(leave);

    let run = job(server.cli(), "disk-1")
        .run(&[
            "upload",
            results.to_str().unwrap(),
            "--spool",
            spool.to_str().unwrap(),
        ])
        .code(8);
    assert!(run.stderr.contains("HTTP 503"), "{}", run.stderr);
    assert!(!run.stderr.contains("HTTP 500"), "{}", run.stderr);
    assert!(
        run.stderr.contains("storage is full") && run.stderr.contains("storage_full"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("upload --resume"), "{}", run.stderr);
    assert!(spool.join("onelaunch-spool.json").is_file());
    assert_no_internal_error(&server);
    assert!(server.log().contains(cause), "{}", server.log());
    let db = data.join("onelaunch.db");
    // Results were acknowledged; no attachment was, and none is half there.
    assert_eq!(count(&db, "test_results"), n);
    assert_eq!(count(&db, STORED), 0);
    assert_nothing_half_written(&data);

    // Space returns; the same server takes the rest.
    std::fs::remove_file(&filler).unwrap();
    let resumed = job(server.cli(), "disk-1")
        .run(&["upload", "--resume", "--spool", spool.to_str().unwrap()])
        .ok();
    assert!(!spool.exists(), "{}", resumed.stderr);
    assert_eq!(count(&db, "test_results"), n);
    assert_eq!(count(&db, STORED), n);
    assert_nothing_half_written(&data);
    let api = server.api();
    let launch = api.launches(1)[0]["id"].as_i64().unwrap();
    let listed = api.results(launch);
    assert_eq!(listed.len(), n);
    assert!(
        listed.iter().all(|r| r["attachmentCount"] == 1),
        "{listed:?}"
    );
    drop(server);
}

/// The database cannot grow: results are refused with 503 `storage_full`,
/// the transaction rolled back (nothing of the batch is stored); freed space
/// lets the resumed upload store every result exactly once.
#[test]
fn a_full_database_refuses_results_and_takes_them_once_space_returns() {
    let Some(fs) = Tmpfs::mount("40m") else {
        return;
    };
    let data = fs.path().join("data");
    let server = start(&data, &[]);
    let work = tempfile::tempdir().unwrap();
    let results = work.path().join("allure-results");
    // More than fits in the WAL file as it is: once a checkpoint has copied
    // the migrations back, the WAL starts over inside the file it already
    // has (about 4 MB), and commits that fit there need no new space. The
    // upload must outgrow it for the database to be refused.
    let n = 6_000;
    // Only result files: the database write is what fails.
    generate_results(&results, "db-full", n);
    for e in std::fs::read_dir(&results).unwrap().flatten() {
        let path = e.path();
        if path.to_string_lossy().ends_with(".txt") {
            std::fs::remove_file(&path).unwrap();
        } else {
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            v.as_object_mut().unwrap().remove("attachments");
            std::fs::write(&path, v.to_string()).unwrap();
        }
    }
    let spool = work.path().join("spool");
    let filler = fs.fill(0);

    let run = job(server.cli(), "disk-2")
        .run(&[
            "upload",
            results.to_str().unwrap(),
            "--spool",
            spool.to_str().unwrap(),
        ])
        .code(8);
    assert!(run.stderr.contains("HTTP 503"), "{}", run.stderr);
    assert!(!run.stderr.contains("HTTP 500"), "{}", run.stderr);
    assert!(run.stderr.contains("storage is full"), "{}", run.stderr);
    assert_no_internal_error(&server);
    // It was the database that could not grow (SQLITE_FULL).
    let log = server.log();
    assert!(log.contains("database or disk is full"), "{log}");
    let db = data.join("onelaunch.db");
    assert_eq!(sqlite(&db, "PRAGMA integrity_check"), "ok");
    let stored = count(&db, "test_results");
    assert!(stored < n, "{stored}");

    std::fs::remove_file(&filler).unwrap();
    job(server.cli(), "disk-2")
        .run(&["upload", "--resume", "--spool", spool.to_str().unwrap()])
        .ok();
    assert!(!spool.exists());
    assert_eq!(count(&db, "test_results"), n);
    assert_eq!(sqlite(&db, "PRAGMA integrity_check"), "ok");
    let api = server.api();
    let launch = api.launches(1)[0]["id"].as_i64().unwrap();
    assert_eq!(api.statistic(launch).values().sum::<i64>(), n as i64);
    drop(server);
}
