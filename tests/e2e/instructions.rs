//! `scripts/ingest-instructions`: the server's (or, with `SIDE=client`, the
//! client's) instructions per ingested result under callgrind
//! (docs/ingest-profile.md). The script drives the real server and CLI; these
//! tests run it small, with the test build of the binary, and check that it
//! uploaded every result and counted them (the instructions, and the bytes
//! the server wrote).

use std::process::Command;

use crate::support::{bin, count_files, repo};

/// The per-result figure of the script's line `SIDE WHAT for N results:
/// TOTAL (PER per result)`.
fn per_result(stdout: &str, side: &str, what: &str, n: u64) -> u64 {
    let prefix = format!("{side} {what} for {n} results: ");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line `{prefix}…` in {stdout}"));
    let (total, rest) = line[prefix.len()..].split_once(" (").expect(line);
    let per: u64 = rest
        .strip_suffix(" per result)")
        .expect(line)
        .parse()
        .expect(line);
    assert_eq!(total.parse::<u64>().expect(line) / n, per, "{line}");
    per
}

/// Runs the script for 40 results into `out` with `env`; its stdout.
fn run_script(out: &std::path::Path, env: &[(&str, &str)]) -> String {
    let o = Command::new(repo().join("scripts/ingest-instructions"))
        .args(["40"])
        .arg(bin())
        .env("OUT", out)
        .envs(env.iter().copied())
        .output()
        .expect("scripts/ingest-instructions (valgrind: scripts/tools/valgrind.sh)");
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

#[test]
fn counts_the_servers_instructions_for_an_upload_of_new_and_of_known_tests() {
    let out = tempfile::tempdir().unwrap();
    let run = |known: bool| {
        let stdout = run_script(out.path(), &[("KNOWN", if known { "1" } else { "0" })]);
        let upload = std::fs::read_to_string(out.path().join("upload.out")).unwrap();
        assert!(
            upload.contains("Uploaded 40 new results, 0 already present"),
            "{upload}"
        );
        // Storing a result writes at least its row and index entries to
        // the WAL: a count this low would mean the writes went uncounted.
        let written = per_result(&stdout, "server", "bytes written", 40);
        assert!(written > 100, "{written}");
        per_result(&stdout, "server", "instructions", 40)
    };
    // A result costs the server tens of thousands of instructions (HTTP,
    // JSON, SQLite): a count this low would mean the upload went uncounted.
    let new = run(false);
    assert!(new > 10_000, "{new}");
    let known = run(true);
    assert!(known > 10_000, "{known}");
    assert!(
        std::fs::read_dir(out.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("callgrind.out")),
        "the profile is kept for callgrind_annotate"
    );
    no_token_in(out.path());
}

/// The script's admin token (`ingest-instructions-<hex>`) is in none of the
/// files it leaves in `out`: valgrind writes the command line of what it
/// runs (the server, or the client) into its log and the profile.
fn no_token_in(out: &std::path::Path) {
    for e in std::fs::read_dir(out).unwrap() {
        let path = e.unwrap().path();
        if path.is_file() {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_string();
            assert!(
                !text.contains("ingest-instructions-"),
                "the token is in {}",
                path.display()
            );
        }
    }
}

/// `SIDE=client`: the same upload, the client counted instead of the server.
#[test]
fn counts_the_clients_instructions_for_an_upload() {
    let out = tempfile::tempdir().unwrap();
    let stdout = run_script(
        out.path(),
        &[("SIDE", "client"), ("ATTACHMENT_EVERY", "10")],
    );
    let upload = std::fs::read_to_string(out.path().join("upload.out")).unwrap();
    assert!(
        upload.contains("Uploaded 40 new results, 0 already present")
            && upload.contains("4 attachments"),
        "{upload}"
    );
    // Reading, parsing and sending a result is thousands of instructions; the
    // process's start alone is more than a million, spread over 40 results.
    let per = per_result(&stdout, "client", "instructions", 40);
    assert!(per > 10_000, "{per}");
    assert!(out.path().join("client.out").is_file());
    assert!(!stdout.contains("server instructions"), "{stdout}");
    no_token_in(out.path());
}

/// `RESULTS_DIR`: a kept directory is uploaded as it is instead of generated
/// files, N being its result files; here real allure-pytest output
/// (containers and attachments beside the results).
#[test]
fn counts_the_servers_instructions_for_a_kept_directory_of_real_results() {
    let out = tempfile::tempdir().unwrap();
    let dir = repo().join("tests/fixtures/allure-pytest");
    let n = count_files(&dir, "-result.json") as u64;
    assert!(n > 1, "{}", dir.display());
    let stdout = run_script(out.path(), &[("RESULTS_DIR", dir.to_str().unwrap())]);
    let upload = std::fs::read_to_string(out.path().join("upload.out")).unwrap();
    assert!(
        upload.contains(&format!("Uploaded {n} new results, 0 already present")),
        "{upload}"
    );
    let per = per_result(&stdout, "server", "instructions", n);
    assert!(per > 10_000, "{per}");
    assert!(
        !out.path().join("results").exists(),
        "nothing is generated when a directory is given"
    );
    no_token_in(out.path());
    // KNOWN=1: the same directory goes into a first launch, uncounted, so
    // the counted upload meets its tests' cases.
    let stdout = run_script(
        out.path(),
        &[("RESULTS_DIR", dir.to_str().unwrap()), ("KNOWN", "1")],
    );
    let first = std::fs::read_to_string(out.path().join("first.out")).unwrap();
    assert!(
        first.contains(&format!("Uploaded {n} new results")),
        "{first}"
    );
    assert!(!out.path().join("first").exists(), "{stdout}");
    assert!(per_result(&stdout, "server", "instructions", n) > 10_000);
}

/// `JOBS=K`: the results go in as K concurrent uploads, each its own GitLab
/// project's job run in one launch, every K-th file (with its attachment)
/// in each; the server's count covers them all.
#[test]
fn counts_the_servers_instructions_for_concurrent_job_runs() {
    let out = tempfile::tempdir().unwrap();
    let stdout = run_script(out.path(), &[("JOBS", "4"), ("ATTACHMENT_EVERY", "10")]);
    let mut job_runs = std::collections::BTreeSet::new();
    let mut attachments = 0;
    for j in 0..4 {
        let upload = std::fs::read_to_string(out.path().join(format!("upload-{j}.out"))).unwrap();
        assert!(
            upload.contains("Uploaded 10 new results, 0 already present"),
            "{upload}"
        );
        let run = upload
            .lines()
            .find_map(|l| l.strip_prefix("Job Run ["))
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or_else(|| panic!("no job run in {upload}"));
        job_runs.insert(run.to_string());
        attachments += upload
            .split(", ")
            .find_map(|p| p.strip_suffix(" attachments"))
            .map(|n| n.parse::<u32>().unwrap())
            .unwrap_or_else(|| panic!("no attachment count in {upload}"));
    }
    assert_eq!(job_runs.len(), 4, "four job runs: {job_runs:?}");
    assert_eq!(attachments, 4, "one result in ten has an attachment");
    let upload = std::fs::read_to_string(out.path().join("upload.out")).unwrap();
    assert!(upload.contains("Uploaded 40 new results"), "{upload}");
    let per = per_result(&stdout, "server", "instructions", 40);
    assert!(per > 10_000, "{per}");
    assert!(per_result(&stdout, "server", "bytes written", 40) > 100);
    no_token_in(out.path());
}
