//! The durable spool: what an interrupted upload keeps, and what resuming sends.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::server::{Reply, TestServer};
use crate::spool::{self, Spool, SpoolManifest, JOURNAL_FILE, MANIFEST_FILE, SPOOL_VERSION};
use crate::{ClientError, SessionTarget, UploadError, UploadOptions, Uploader};

const TARGET: SessionTarget = SessionTarget {
    launch_id: 5,
    job_run_id: Some(9),
};

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), content).unwrap();
}

/// `n` results `r00`…; every fifth (`r00`, `r05`, …) has an attachment.
fn results(dir: &Path, n: usize) {
    for i in 0..n {
        let uuid = format!("r{i:02}");
        let attachments = if i % 5 == 0 {
            let source = format!("{uuid}-attachment.txt");
            write(dir, &source, format!("log of {uuid}"));
            json!([{"name": "log", "source": source, "type": "text/plain"}])
        } else {
            json!([])
        };
        let v = json!({"uuid": uuid, "name": uuid, "status": "passed", "attachments": attachments});
        write(dir, &format!("{uuid}-result.json"), v.to_string());
    }
}

fn manifest() -> SpoolManifest {
    SpoolManifest {
        version: SPOOL_VERSION,
        endpoint: "http://example.invalid".into(),
        project_id: 1,
        launch_id: Some(TARGET.launch_id),
        job_run_id: TARGET.job_run_id,
        ..SpoolManifest::default()
    }
}

fn opts() -> UploadOptions {
    UploadOptions {
        batch_size: 5,
        concurrency: 2,
        ..Default::default()
    }
}

fn sent(server: &TestServer) -> Vec<String> {
    let mut v: Vec<String> = server.sent_uuids().into_iter().flatten().collect();
    v.sort();
    v
}

/// Attachment file names sent, by the result id in the path.
fn attachments(server: &TestServer) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = server
        .find("POST", "/attachment")
        .iter()
        .flat_map(|r| {
            let id = r.path.split('/').nth(4).unwrap_or_default().to_string();
            r.parts
                .iter()
                .map(move |p| (id.clone(), p.file_name.clone().unwrap_or_default()))
        })
        .collect();
    v.sort();
    v
}

fn uuids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("r{i:02}")).collect()
}

#[tokio::test]
async fn an_interrupted_upload_is_spooled_and_resuming_sends_exactly_the_rest() {
    // The batch holding r07 fails (503, no retries): r00–r04 are acknowledged,
    // and so are r10–r19, the next chunk, sent while the first was in flight;
    // the upload stops before the attachments of either are sent.
    let down = TestServer::with(|r, _| {
        (r.path == "/api/upload/test-result" && r.json()["results"].to_string().contains("r07"))
            .then(|| Reply::new(503, r#"{"message":"down"}"#))
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("results");
    results(&dir, 25);
    write(&dir, "environment.properties", "os=linux\n");
    let client = down.client_with(|c| c.max_retries = 0);
    let mut up = Uploader::new(client, TARGET, opts());
    let err = up
        .upload_paths(std::slice::from_ref(&dir))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::Client(ClientError::Server { status: 503, .. })
        ),
        "{err:?}"
    );
    assert_eq!(up.report().results, 15);
    assert_eq!(
        sent(&down).len(),
        20,
        "two chunks of two batches were tried"
    );

    let spool_dir = spool::default_spool_dir(&dir);
    let (spool, problems) = up.save_spool(&spool_dir, manifest()).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(spool.dir(), spool_dir);
    assert_eq!(spool.manifest().session_id, Some(77));
    assert_eq!(spool.acknowledged_results().unwrap(), 15);
    assert_eq!(spool.result_files(), 25, "no chunk was finished");
    let kept = spool.group_dirs()[0].clone();
    assert!(kept.join("r00-attachment.txt").is_file());
    assert!(kept.join("environment.properties").is_file());
    let text = std::fs::read_to_string(spool_dir.join(MANIFEST_FILE)).unwrap();
    assert!(!text.contains(super::server::TOKEN));

    // The spool is not results: a new upload of the directory ignores it.
    let other = TestServer::start().await;
    let mut plain = Uploader::new(other.client(), TARGET, opts());
    plain
        .upload_paths(std::slice::from_ref(&dir))
        .await
        .unwrap();
    assert_eq!(plain.report().results, 25);
    assert_eq!(plain.report().files_seen, 31);

    // Resuming sends the 10 unacknowledged results and the attachments of
    // r00 (to its id from the first server), r05, r10, r15 and r20, in a
    // session of its own (an upload in flight until it is closed).
    let healthy = TestServer::start().await;
    let spool = Spool::load(&spool_dir).unwrap().unwrap();
    let mut up = Uploader::new(healthy.client(), TARGET, opts());
    up.resume(&spool).unwrap();
    up.upload_paths(&spool.group_dirs()).await.unwrap();
    let rest: Vec<String> = uuids(5..10).into_iter().chain(uuids(20..25)).collect();
    assert_eq!(sent(&healthy), rest);
    assert_eq!(healthy.find("POST", "/api/upload/session").len(), 1);
    assert_eq!(
        healthy.find("POST", "/api/upload/test-result")[0].json()["testSessionId"],
        77
    );
    let sent_attachments = attachments(&healthy);
    assert_eq!(sent_attachments.len(), 5, "{sent_attachments:?}");
    assert!(sent_attachments.contains(&("1000".into(), "r00-attachment.txt".into())));
    assert_eq!(up.report().results, 10);
    assert_eq!(up.report().previously_acknowledged, 15);

    // Everything is in the journal now; a second resume sends nothing.
    let again = TestServer::start().await;
    let mut up = Uploader::new(again.client(), TARGET, opts());
    up.resume(&spool).unwrap();
    up.upload_paths(&spool.group_dirs()).await.unwrap();
    assert!(again.sent_uuids().is_empty());
    assert!(attachments(&again).is_empty());
    assert_eq!(up.report().previously_acknowledged, 25);

    spool.remove().unwrap();
    assert!(!spool_dir.exists());
}

#[tokio::test]
async fn a_torn_journal_line_is_sent_again_and_later_lines_still_count() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("results");
    results(&dir, 6);
    let spool_dir = work.path().join("kept");
    let (spool, _) =
        spool::spool_paths(&spool_dir, manifest(), std::slice::from_ref(&dir)).unwrap();
    assert_eq!(spool.result_files(), 6);
    // A crash in the middle of an append.
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(spool_dir.join(JOURNAL_FILE))
        .unwrap();
    journal.write_all(br#"{"r":"r01","id":"#).unwrap();
    drop(journal);

    let server = TestServer::start().await;
    let mut up = Uploader::new(server.client(), TARGET, opts());
    up.resume(&spool).unwrap();
    up.upload_paths(&spool.group_dirs()).await.unwrap();
    assert_eq!(sent(&server), uuids(0..6), "the torn entry is not trusted");
    assert_eq!(spool.acknowledged_results().unwrap(), 6);
    let text = std::fs::read_to_string(spool_dir.join(JOURNAL_FILE)).unwrap();
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_err())
        .collect();
    assert_eq!(bad, vec![r#"{"r":"r01","id":"#]);
}

#[tokio::test]
async fn a_spool_is_never_read_as_results() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("results");
    results(&dir, 3);
    let (spool, _) = spool::spool_paths(
        &spool::default_spool_dir(&dir),
        manifest(),
        std::slice::from_ref(&dir),
    )
    .unwrap();
    let server = TestServer::start().await;

    // Named directly, the spool (or a directory inside it) is refused.
    for path in [spool.dir().to_path_buf(), spool.group_dirs()[0].clone()] {
        let mut up = Uploader::new(server.client(), TARGET, opts());
        let err = up
            .upload_paths(std::slice::from_ref(&path))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("upload --resume"), "{err}");
    }
    // Through a glob, it is skipped.
    let pattern = PathBuf::from(format!("{}/*", dir.display()));
    let mut up = Uploader::new(server.client(), TARGET, opts());
    up.upload_paths(&[pattern]).await.unwrap();
    assert_eq!(sent(&server), uuids(0..3));
    let pattern = PathBuf::from(format!("{}/.onelaunch-spool/files/*/*", dir.display()));
    let mut up = Uploader::new(server.client(), TARGET, opts());
    let _ = up.upload_paths(&[pattern]).await;
    assert_eq!(sent(&server).len(), 3, "nothing inside the spool was sent");
}

#[tokio::test]
async fn a_new_spool_never_overwrites_another() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("results");
    results(&dir, 2);
    let first = spool::default_spool_dir(&dir);
    let (a, _) = spool::spool_paths(&first, manifest(), std::slice::from_ref(&dir)).unwrap();
    let (b, _) = spool::spool_paths(&first, manifest(), std::slice::from_ref(&dir)).unwrap();
    assert_eq!(a.dir(), first);
    assert_eq!(b.dir(), work.path().join("results/.onelaunch-spool-2"));
    // A directory with other content is not taken over.
    let busy = work.path().join("busy");
    write(&busy, "notes.txt", "mine");
    let err = spool::spool_paths(&busy, manifest(), std::slice::from_ref(&dir)).unwrap_err();
    assert!(err.to_string().contains("not a spool"), "{err}");
    assert!(busy.join("notes.txt").is_file());
    // No temporary directory is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

const JUNIT: &str = r#"<testsuite name="s"><testcase classname="c" name="t1"/><testcase classname="c" name="t2"><failure message="x"/></testcase></testsuite>"#;

#[tokio::test]
async fn junit_results_of_each_ci_execution_get_uuids_of_their_own() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("results");
    write(&dir, "TEST-s.xml", JUNIT);
    let mut by_execution = Vec::new();
    let runs: [(Option<u32>, Option<&str>); 5] = [
        (None, None),
        (Some(1), Some("unit#1")),
        (Some(2), Some("unit#2")),
        (Some(2), Some("unit#2")),
        (None, Some("55501299")),
    ];
    for (attempt, execution) in runs {
        let server = TestServer::start().await;
        let mut up = Uploader::new(
            server.client(),
            TARGET,
            UploadOptions {
                attempt,
                execution: execution.map(str::to_string),
                ..Default::default()
            },
        );
        up.upload_paths(std::slice::from_ref(&dir)).await.unwrap();
        let env = server.find("POST", "/api/upload/session")[0].json()["environment"].clone();
        let recorded = |key: &str| {
            env.as_array()
                .unwrap()
                .iter()
                .find(|kv| kv["key"] == key)
                .map(|kv| kv["value"].as_str().unwrap().to_string())
        };
        assert_eq!(recorded("CI_ATTEMPT"), attempt.map(|a| a.to_string()));
        assert_eq!(recorded("CI_EXECUTION").as_deref(), execution);
        by_execution.push(sent(&server));
    }
    assert_eq!(
        by_execution[2], by_execution[3],
        "the same execution is idempotent"
    );
    // Every other pair (no execution, attempt 1, attempt 2, a GitLab job)
    // shares no uuid.
    for (i, j) in [(0, 1), (0, 2), (0, 4), (1, 2), (1, 4), (2, 4)] {
        let (a, b) = (&by_execution[i], &by_execution[j]);
        assert!(a.iter().all(|u| !b.contains(u)), "{i} vs {j}: {a:?} {b:?}");
    }
}
