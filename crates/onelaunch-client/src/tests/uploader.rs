//! Behaviour of the [`Uploader`] against a real HTTP server.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::server::{Reply, TestServer};
use crate::{ClientError, SessionTarget, UploadError, UploadOptions, Uploader};

fn result_json(uuid: &str, status: &str, attachments: Value) -> String {
    json!({
        "uuid": uuid,
        "name": format!("test {uuid}"),
        "fullName": format!("suite.test_{uuid}"),
        "status": status,
        "start": 1000,
        "stop": 1500,
        "attachments": attachments,
    })
    .to_string()
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// A passed result with one text attachment holding its uuid.
fn write_attached(dir: &Path, uuid: &str) {
    write(dir, &format!("{uuid}-attachment.txt"), uuid);
    write(
        dir,
        &format!("{uuid}-result.json"),
        result_json(
            uuid,
            "passed",
            json!([{"name": "a", "source": format!("{uuid}-attachment.txt")}]),
        ),
    );
}

fn write_result(dir: &Path, uuid: &str, status: &str) {
    write(
        dir,
        &format!("{uuid}-result.json"),
        result_json(uuid, status, json!([])),
    );
}

fn uploader(server: &TestServer, opts: UploadOptions) -> Uploader {
    Uploader::new(
        server.client(),
        SessionTarget {
            launch_id: 5,
            job_run_id: None,
        },
        opts,
    )
}

fn all_sent(server: &TestServer) -> Vec<String> {
    let mut v: Vec<String> = server.sent_uuids().into_iter().flatten().collect();
    v.sort();
    v
}

#[tokio::test]
async fn sends_batches_of_the_configured_size_in_one_session() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..7 {
        write_result(
            dir.path(),
            &format!("r{i}"),
            if i < 5 { "passed" } else { "failed" },
        );
    }
    write(dir.path(), "notes.txt", "not a result");
    let mut up = uploader(
        &server,
        UploadOptions {
            batch_size: 3,
            concurrency: 2,
            ..Default::default()
        },
    );
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();

    let mut sizes: Vec<usize> = server.sent_uuids().iter().map(Vec::len).collect();
    sizes.sort();
    assert_eq!(sizes, vec![1, 3, 3]);
    assert_eq!(all_sent(&server).len(), 7);
    for r in server.find("POST", "/api/upload/test-result") {
        assert_eq!(r.json()["testSessionId"], 77);
    }
    let sessions = server.find("POST", "/api/upload/session");
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].query, "manual=true");
    assert_eq!(sessions[0].json()["launchId"], 5);

    let report = up.report();
    assert_eq!(report.results, 7);
    assert_eq!(report.by_status.get("passed"), Some(&5));
    assert_eq!(report.by_status.get("failed"), Some(&2));
    assert_eq!(report.files_seen, 8);
    assert_eq!(report.session_id, Some(77));
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    // A second pass over the same files sends nothing again.
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert_eq!(server.find("POST", "/api/upload/test-result").len(), 3);
    assert_eq!(up.report().results, 7);
}

/// Results with long traces (7 MiB of result file each) go in requests of at
/// most 16 MiB of files, far below the server's 64 MiB limit on a JSON body,
/// however many results `--size` allows: two and one, not three in one.
#[tokio::test]
async fn large_results_are_sent_in_requests_bounded_in_bytes() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let trace = "at frame\\n".repeat(7 * 1024 * 1024 / 10);
    for i in 0..3 {
        write(
            dir.path(),
            &format!("big{i}-result.json"),
            format!(
                r#"{{"uuid":"big{i}","name":"t{i}","status":"failed","statusDetails":{{"trace":"{trace}"}}}}"#
            ),
        );
    }
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    let mut sizes: Vec<usize> = server.sent_uuids().iter().map(Vec::len).collect();
    sizes.sort();
    assert_eq!(sizes, vec![1, 2]);
    assert_eq!(up.report().results, 3);
    assert!(
        up.report().problems.is_empty(),
        "{:?}",
        up.report().problems
    );
}

#[tokio::test]
async fn session_goes_into_the_job_run_when_given() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_result(dir.path(), "a", "passed");
    let mut up = Uploader::new(
        server.client(),
        SessionTarget {
            launch_id: 5,
            job_run_id: Some(9),
        },
        UploadOptions::default(),
    );
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    let s = &server.find("POST", "/api/upload/session")[0];
    assert_eq!(s.query, "");
    assert_eq!(s.json()["jobRunId"], 9);
    assert!(s.json().get("launchId").is_none());
}

#[tokio::test]
async fn no_session_without_results() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert!(server.requests().is_empty());
    assert_eq!(up.report().session_id, None);
}

#[tokio::test]
async fn attachments_travel_as_named_multipart_parts() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let shot: Vec<u8> = vec![0x89, b'P', b'N', b'G', 0, 1, 2, 255];
    write(dir.path(), "s1-attachment.png", &shot);
    write(dir.path(), "log-attachment.txt", "hello log");
    write(dir.path(), "step-attachment.json", "{\"a\":1}");
    let result = json!({
        "uuid": "u1", "name": "t", "status": "broken",
        "attachments": [
            {"name": "screenshot", "source": "s1-attachment.png", "type": "image/png"},
            {"name": "log", "source": "log-attachment.txt"}
        ],
        "steps": [{"name": "step", "attachments": [
            {"name": "payload", "source": "step-attachment.json"}
        ]}]
    });
    write(dir.path(), "u1-result.json", result.to_string());
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();

    let reqs = server.find("POST", "/attachment");
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/api/upload/test-result/1000/attachment");
    let parts = &reqs[0].parts;
    assert_eq!(parts.len(), 3);
    let by_name = |n: &str| {
        parts
            .iter()
            .find(|p| p.file_name.as_deref() == Some(n))
            .unwrap()
    };
    let png = by_name("s1-attachment.png");
    assert_eq!(png.name, "file");
    assert_eq!(png.bytes, shot);
    assert_eq!(png.content_type.as_deref(), Some("image/png"));
    let log = by_name("log-attachment.txt");
    assert_eq!(log.bytes, b"hello log");
    assert_eq!(log.content_type.as_deref(), Some("text/plain"));
    assert_eq!(by_name("step-attachment.json").bytes, b"{\"a\":1}");
    assert_eq!(up.report().attachments, 3);
    assert!(
        up.report().problems.is_empty(),
        "{:?}",
        up.report().problems
    );
}

/// Attachments are read many to a reader thread, and a batch that reaches
/// its bytes leaves the rest for the next: every file still arrives whole,
/// once, and the ones that cannot go are problems naming their result file.
#[tokio::test]
async fn attachments_read_in_batches_arrive_whole_and_once() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..150 {
        let uuid = format!("r{i:03}");
        // Every tenth is large: a batch of 64 passes its 2 MiB.
        let bytes: Vec<u8> = if i % 10 == 0 {
            (0..700 * 1024)
                .map(|b| (b % 251) as u8 ^ (i as u8))
                .collect()
        } else {
            uuid.clone().into_bytes()
        };
        let name = format!("{uuid}-attachment.bin");
        write(dir.path(), &name, &bytes);
        expected.insert(name.clone(), bytes);
        write(
            dir.path(),
            &format!("{uuid}-result.json"),
            result_json(&uuid, "passed", json!([{"name": "a", "source": name}])),
        );
    }
    write(
        dir.path(),
        "gone-result.json",
        result_json(
            "gone",
            "passed",
            json!([{"name": "a", "source": "gone-attachment.bin"}]),
        ),
    );
    write(
        dir.path(),
        "out-result.json",
        result_json(
            "out",
            "passed",
            json!([{"name": "a", "source": "../secret.bin"}]),
        ),
    );
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();

    let mut arrived = std::collections::BTreeMap::new();
    // This server has no bulk route (404): the files go one result a request.
    for req in server.find("POST", "/attachment") {
        for part in req.parts.into_iter().filter(|p| p.name == "file") {
            let name = part.file_name.unwrap();
            assert!(
                arrived.insert(name.clone(), part.bytes).is_none(),
                "{name} twice"
            );
        }
    }
    assert_eq!(arrived.len(), expected.len());
    for (name, bytes) in &expected {
        assert!(arrived.get(name) == Some(bytes), "{name} differs");
    }
    assert_eq!(up.report().attachments, 150);
    let mut problems: Vec<String> = up
        .report()
        .problems
        .iter()
        .map(|p| {
            format!(
                "{}: {}",
                p.path.file_name().unwrap().to_string_lossy(),
                p.message
            )
        })
        .collect();
    problems.sort();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("gone-result.json: attachment \"gone-attachment.bin\" not found"),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("out-result.json: attachment \"../secret.bin\" refused"),
        "{problems:?}"
    );
}

#[tokio::test]
async fn malformed_files_are_problems_and_the_good_ones_are_sent() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_result(dir.path(), "good1", "passed");
    write_result(dir.path(), "good2", "skipped");
    write(
        dir.path(),
        "bad-result.json",
        "{\"uuid\": \"x\", \"name\": ",
    );
    write(dir.path(), "empty-result.json", "");
    write(dir.path(), "binary-result.json", [0xff, 0xfe, 0x00, 0x41]);
    write(dir.path(), "nouuid-result.json", "{\"name\": \"n\"}");
    write(dir.path(), "broken-container.json", "[1, 2");
    write(dir.path(), "junk.xml", "<testsuite><testcase");
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();

    assert_eq!(all_sent(&server), vec!["good1", "good2"]);
    let report = up.report();
    assert_eq!(report.results, 2);
    let problem_files: HashSet<String> = report
        .problems
        .iter()
        .map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let expected: HashSet<String> = [
        "bad-result.json",
        "empty-result.json",
        "binary-result.json",
        "nouuid-result.json",
        "broken-container.json",
        "junk.xml",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(problem_files, expected, "{:?}", report.problems);
    let empty = report
        .problems
        .iter()
        .find(|p| p.path.ends_with("empty-result.json"))
        .unwrap();
    assert_eq!(empty.message, "empty file");
    let nouuid = report
        .problems
        .iter()
        .find(|p| p.path.ends_with("nouuid-result.json"))
        .unwrap();
    assert!(nouuid.message.contains("uuid"), "{}", nouuid.message);
}

#[cfg(unix)]
#[tokio::test]
async fn never_reads_outside_the_results_directory() {
    let server = TestServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let results = root.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let secret = b"TOP-SECRET-CONTENT-42";
    write(root.path(), "secret.txt", secret);
    std::os::unix::fs::symlink(
        root.path().join("secret.txt"),
        results.join("link-attachment.txt"),
    )
    .unwrap();
    // An inside symlink is fine.
    write(&results, "real-attachment.txt", "inside");
    std::os::unix::fs::symlink(
        results.join("real-attachment.txt"),
        results.join("alias-attachment.txt"),
    )
    .unwrap();
    let result = json!({
        "uuid": "u1", "name": "t", "status": "passed",
        "attachments": [
            {"name": "up", "source": "../secret.txt"},
            {"name": "abs", "source": root.path().join("secret.txt").to_string_lossy()},
            {"name": "link", "source": "link-attachment.txt"},
            {"name": "alias", "source": "alias-attachment.txt"},
            {"name": "missing", "source": "gone-attachment.txt"}
        ]
    });
    write(&results, "u1-result.json", result.to_string());
    // A result file that is itself a symlink to the outside is refused too.
    write(
        root.path(),
        "outside-result.json",
        result_json("outside", "passed", json!([])),
    );
    std::os::unix::fs::symlink(
        root.path().join("outside-result.json"),
        results.join("o-result.json"),
    )
    .unwrap();

    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(std::slice::from_ref(&results))
        .await
        .unwrap();

    assert_eq!(all_sent(&server), vec!["u1"]);
    let received = server.all_bytes();
    assert!(
        !received.windows(secret.len()).any(|w| w == secret),
        "secret bytes reached the server"
    );
    let parts = &server.find("POST", "/attachment")[0].parts;
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].file_name.as_deref(), Some("alias-attachment.txt"));
    assert_eq!(parts[0].bytes, b"inside");

    let problems = &up.report().problems;
    let about = |needle: &str| {
        problems
            .iter()
            .find(|p| p.message.contains(needle))
            .unwrap_or_else(|| panic!("no problem about {needle}: {problems:?}"))
    };
    assert!(about("../secret.txt").path.ends_with("u1-result.json"));
    about("link-attachment.txt");
    let missing = about("gone-attachment.txt");
    assert!(missing.path.ends_with("u1-result.json"));
    assert!(missing.message.contains("not found"));
    assert!(problems.iter().any(|p| p.path.ends_with("o-result.json")));
    assert_eq!(problems.len(), 5, "{problems:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn special_files_are_refused() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe-attachment.txt");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !matches!(status, Ok(s) if s.success()) {
        return;
    }
    std::fs::create_dir(dir.path().join("sub-attachment")).unwrap();
    let result = json!({
        "uuid": "u1", "name": "t",
        "attachments": [
            {"name": "p", "source": "pipe-attachment.txt"},
            {"name": "d", "source": "sub-attachment"}
        ]
    });
    write(dir.path(), "u1-result.json", result.to_string());
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert_eq!(all_sent(&server), vec!["u1"]);
    let problems = &up.report().problems;
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems
        .iter()
        .all(|p| p.message.contains("not a regular file")));
}

#[tokio::test]
async fn files_above_the_limit_are_refused() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "big-attachment.bin", vec![7u8; 2048]);
    write(
        dir.path(),
        "a-result.json",
        result_json(
            "a",
            "passed",
            json!([{"name": "b", "source": "big-attachment.bin"}]),
        ),
    );
    let long_name = "x".repeat(1500);
    write(
        dir.path(),
        "huge-result.json",
        json!({"uuid": "huge", "name": long_name}).to_string(),
    );
    let mut up = uploader(
        &server,
        UploadOptions {
            max_file_bytes: 1024,
            ..Default::default()
        },
    );
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert_eq!(all_sent(&server), vec!["a"]);
    assert!(server.find("POST", "/attachment").is_empty());
    let problems = &up.report().problems;
    assert_eq!(problems.len(), 2, "{problems:?}");
    for p in problems {
        assert!(p.message.contains("limit of 1024 bytes"), "{p}");
    }
    assert!(problems
        .iter()
        .any(|p| p.path.ends_with("huge-result.json")));
    assert!(problems
        .iter()
        .any(|p| p.path.ends_with("a-result.json") && p.message.contains("big-attachment.bin")));
}

#[tokio::test]
async fn fixtures_and_their_attachments_follow_the_result() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_result(dir.path(), "r1", "passed");
    write_result(dir.path(), "r2", "passed");
    write(dir.path(), "setup-attachment.txt", "setup log");
    let container = json!({
        "uuid": "c1",
        "children": ["r1", "r2"],
        "befores": [{"name": "setUp", "status": "passed", "start": 1, "stop": 2,
                     "attachments": [{"name": "setup", "source": "setup-attachment.txt", "type": "text/plain"}]}],
        "afters": [{"name": "tearDown", "status": "passed"}]
    });
    write(dir.path(), "c1-container.json", container.to_string());
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();

    let fixtures = server.find("POST", "/test-fixture-result");
    assert_eq!(fixtures.len(), 2);
    for f in &fixtures {
        let body = f.json();
        let list = body["fixtures"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["type"], "BEFORE");
        assert_eq!(list[0]["name"], "setUp");
        assert_eq!(list[1]["type"], "AFTER");
    }
    let atts = server.find("POST", "/attachment");
    assert_eq!(atts.len(), 2);
    for a in atts {
        assert_eq!(a.parts.len(), 1);
        assert_eq!(
            a.parts[0].file_name.as_deref(),
            Some("setup-attachment.txt")
        );
        assert_eq!(a.parts[0].bytes, b"setup log");
    }
    assert_eq!(up.report().fixtures, 4);
    assert_eq!(up.report().attachments, 2);
}

#[tokio::test]
async fn environment_comes_from_files_only_and_drops_secrets() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_result(dir.path(), "a", "passed");
    write(
        dir.path(),
        "environment.properties",
        "Browser=firefox\nDB_PASSWORD=hunter2\nAPI_TOKEN=abc\nOS=linux\n",
    );
    write(
        dir.path(),
        "executor.json",
        json!({"name": "Jenkins", "type": "jenkins", "buildName": "#12",
               "buildUrl": "https://ci/job/12"})
        .to_string(),
    );
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    let env = server.find("POST", "/api/upload/session")[0].json()["environment"].clone();
    let pairs: Vec<(String, String)> = env
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            (
                kv["key"].as_str().unwrap().to_string(),
                kv["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "Browser",
            "OS",
            "executor.name",
            "executor.type",
            "executor.buildName",
            "executor.buildUrl"
        ]
    );
    assert!(pairs.contains(&("executor.buildUrl".into(), "https://ci/job/12".into())));
    let raw = String::from_utf8(server.all_bytes()).unwrap_or_default();
    assert!(!raw.contains("hunter2"));
    assert!(!raw.contains("PATH"));
}

#[tokio::test]
async fn junit_reports_are_uploaded() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "TEST-suite.xml",
        r#"<?xml version="1.0"?>
<testsuite name="suite" tests="2">
  <testcase classname="a.B" name="ok" time="0.1"/>
  <testcase classname="a.B" name="bad" time="0.2"><failure message="boom">trace</failure></testcase>
</testsuite>"#,
    );
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[dir.path().join("TEST-suite.xml")])
        .await
        .unwrap();
    assert_eq!(up.report().results, 2, "{:?}", up.report().problems);
    assert_eq!(up.report().by_status.get("failed"), Some(&1));
    assert_eq!(up.report().by_status.get("passed"), Some(&1));
}

#[tokio::test]
async fn closed_launch_is_reopened_once_when_allowed() {
    let responder = |r: &super::server::Recorded, n: usize| {
        (r.path == "/api/upload/test-result" && n == 0).then(|| {
            Reply::new(
                409,
                json!({"message": "Launch 5 is closed", "status": 409, "code": "launch_closed"})
                    .to_string(),
            )
        })
    };
    let server = TestServer::with(responder).await;
    let dir = tempfile::tempdir().unwrap();
    write_result(dir.path(), "a", "passed");
    let mut up = uploader(
        &server,
        UploadOptions {
            reopen_closed_launch: true,
            ..Default::default()
        },
    );
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert_eq!(server.find("POST", "/api/launch/5/reopen").len(), 1);
    assert_eq!(server.find("POST", "/api/upload/test-result").len(), 2);
    assert_eq!(up.report().results, 1);

    // Without the option the error is returned.
    let server = TestServer::with(responder).await;
    let mut up = uploader(&server, UploadOptions::default());
    let err = up
        .upload_paths(&[dir.path().to_path_buf()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, UploadError::Client(ClientError::LaunchClosed(_))),
        "{err:?}"
    );
    assert!(server.find("POST", "/reopen").is_empty());
}

#[tokio::test]
async fn a_refused_batch_is_resent_result_by_result() {
    let server = TestServer::with(|r, _| {
        (r.path == "/api/upload/test-result"
            && r.json()["results"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["uuid"] == "bad")))
        .then(|| {
            Reply::new(
                400,
                json!({"message": "invalid result", "status": 400}).to_string(),
            )
        })
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    for u in ["a", "bad", "c"] {
        write_result(dir.path(), u, "passed");
    }
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert_eq!(up.report().results, 2);
    let problems = &up.report().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].path.ends_with("bad-result.json"));
    assert!(problems[0].message.contains("invalid result"));
}

#[tokio::test]
async fn input_paths_files_and_globs() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_result(dir.path(), "a", "passed");
    write_result(dir.path(), "b", "passed");
    write_result(dir.path(), "c", "passed");

    let mut up = uploader(&server, UploadOptions::default());
    let err = up
        .upload_paths(&[dir.path().join("nope")])
        .await
        .unwrap_err();
    assert!(matches!(err, UploadError::Input { .. }), "{err:?}");
    assert!(err.to_string().contains("nope"));
    let err = up
        .upload_paths(&[dir.path().join("*.nothing")])
        .await
        .unwrap_err();
    assert!(matches!(err, UploadError::Input { .. }), "{err:?}");
    assert!(server.requests().is_empty());

    up.upload_paths(&[
        dir.path().join("a-result.json"),
        dir.path().join("[b]-*.json"),
    ])
    .await
    .unwrap();
    assert_eq!(all_sent(&server), vec!["a", "b"]);
}

/// When the server answered each results request (its uuids), for a server
/// that takes `delay_ms` over every request.
async fn answered_at(
    delay_ms: u64,
) -> (
    TestServer,
    std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, Vec<String>)>>>,
) {
    let answers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = answers.clone();
    let server = TestServer::with(move |r, _| {
        if r.path == "/api/upload/test-result" {
            let uuids = r.json()["results"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| x["uuid"].as_str().unwrap_or_default().to_string())
                .collect();
            log.lock().unwrap().push((std::time::Instant::now(), uuids));
        }
        None
    })
    .await;
    server.set_delay(delay_ms);
    (server, answers)
}

fn answer_of(
    answers: &[(std::time::Instant, Vec<String>)],
    uuid: &str,
    nth: usize,
) -> std::time::Instant {
    answers
        .iter()
        .filter(|(_, u)| u.iter().any(|x| x == uuid))
        .nth(nth)
        .unwrap_or_else(|| panic!("{uuid} #{nth} not sent"))
        .0
}

/// Files `1-`, `3-` and `4-result.json` holding the given results (uuid,
/// status), and `2-result.json` that is not JSON: with [`chunks_of_two`]
/// the first chunk (files 1 and 2) sends one result.
fn two_chunks(results: [(&str, &str); 3]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "2-result.json", "{ not json");
    for (file, (uuid, status)) in ["1", "3", "4"].into_iter().zip(results) {
        write(
            dir.path(),
            &format!("{file}-result.json"),
            result_json(uuid, status, json!([])),
        );
    }
    dir
}

/// Chunks of two files (batches of one, two in flight); the first chunk
/// has one result, so a request permit is free while it is in flight.
fn chunks_of_two() -> UploadOptions {
    UploadOptions {
        batch_size: 1,
        concurrency: 2,
        ..Default::default()
    }
}

/// The next chunk's results are read and sent while the server still works
/// on a chunk, instead of after its answers.
#[tokio::test]
async fn the_next_chunk_goes_while_a_chunk_is_in_flight() {
    let (server, answers) = answered_at(600).await;
    let dir = two_chunks([("a", "passed"), ("b", "passed"), ("c", "passed")]);
    let mut up = uploader(&server, chunks_of_two());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert_eq!(all_sent(&server), vec!["a", "b", "c"]);
    assert_eq!(up.report().results, 3);
    let answers = answers.lock().unwrap();
    let gap = answer_of(&answers, "b", 0) - answer_of(&answers, "a", 0);
    assert!(
        gap.as_millis() < 300,
        "b sent after a was answered: {gap:?}"
    );
}

/// A uuid of a chunk in flight, found again in the next chunk's files: that
/// chunk waits for the answers, so the first file's result is the one stored.
#[tokio::test]
async fn a_uuid_repeated_in_the_next_chunk_waits_for_the_first_answer() {
    let (server, answers) = answered_at(600).await;
    let dir = two_chunks([("u", "passed"), ("u", "failed"), ("c", "passed")]);
    let mut up = uploader(&server, chunks_of_two());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    let answers = answers.lock().unwrap();
    let gap = answer_of(&answers, "u", 1) - answer_of(&answers, "u", 0);
    assert!(
        gap.as_millis() >= 500,
        "u sent again before its answer: {gap:?}"
    );
    let first = server.find("POST", "/api/upload/test-result")[0].json();
    assert_eq!(first["results"][0]["status"], "passed");
}

/// Chunks of two files whose results the server answers at once and whose
/// attachments it answers after 600 ms: the attachment of `1-result.json`
/// (the first chunk) is still on its way when the last chunk (files 7 and
/// 8) is read and sent.
#[tokio::test]
async fn a_slow_attachment_does_not_hold_back_the_next_chunks() {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = log.clone();
    let server = TestServer::with(move |r, _| {
        let now = std::time::Instant::now();
        if r.path == "/api/upload/test-result" {
            for x in r.json()["results"].as_array().into_iter().flatten() {
                let uuid = x["uuid"].as_str().unwrap_or_default().to_string();
                seen.lock().unwrap().push((now, uuid));
            }
        } else if r.path.contains("attachment") {
            // Called after the delay: when the attachment was answered.
            seen.lock().unwrap().push((now, "attachment".to_string()));
        }
        None
    })
    .await;
    server.set_delay_for("attachment", 600);
    let dir = tempfile::tempdir().unwrap();
    write_attached(dir.path(), "1");
    for uuid in ["2", "3", "4", "5", "6", "7", "8"] {
        write_result(dir.path(), uuid, "passed");
    }
    let mut up = uploader(&server, chunks_of_two());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert_eq!(up.report().results, 8);
    assert_eq!(up.report().attachments, 1);
    let log = log.lock().unwrap();
    let at = |what: &str| {
        log.iter()
            .find(|(_, w)| w == what)
            .unwrap_or_else(|| panic!("{what} not sent: {log:?}"))
            .0
    };
    assert!(
        at("8") < at("attachment"),
        "the last chunk waited for the first chunk's attachment"
    );
}

/// A chunk is read in parts at once; what is read keeps the files' order:
/// of two files with one uuid (the first and the last) the first is sent,
/// and a broken file of a later part is reported under its own name.
#[tokio::test]
async fn a_chunk_read_in_parts_keeps_the_files_order() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    for i in 1..299 {
        write_result(dir.path(), &format!("{i:03}"), "passed");
    }
    write(
        dir.path(),
        "000-result.json",
        result_json("dup", "passed", json!([])),
    );
    write(
        dir.path(),
        "299-result.json",
        result_json("dup", "failed", json!([])),
    );
    write(dir.path(), "250-result.json", "{ not json");
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    let sent: Vec<Value> = server
        .find("POST", "/api/upload/test-result")
        .iter()
        .flat_map(|r| r.json()["results"].as_array().cloned().unwrap_or_default())
        .collect();
    let dups: Vec<&Value> = sent.iter().filter(|r| r["uuid"] == "dup").collect();
    assert_eq!(dups.len(), 1);
    assert_eq!(dups[0]["status"], "passed");
    assert_eq!(sent.len(), 298);
    assert_eq!(up.report().results, 298);
    let problems = &up.report().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].path.ends_with("250-result.json"),
        "{problems:?}"
    );
}

/// The same files named by their directory, a glob and one by one: each is
/// read, counted and sent once.
#[tokio::test]
async fn a_file_named_several_ways_is_sent_once() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c"] {
        write_result(dir.path(), name, "passed");
    }
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[
        dir.path().join("*-result.json"),
        dir.path().to_path_buf(),
        dir.path().join("b-result.json"),
        dir.path().join("*-result.json"),
    ])
    .await
    .unwrap();
    assert_eq!(all_sent(&server), vec!["a", "b", "c"]);
    assert_eq!(server.find("POST", "/api/upload/test-result").len(), 1);
    assert_eq!(up.report().files_seen, 3);
    assert_eq!(up.report().results, 3);
}

#[tokio::test]
async fn watch_sends_complete_files_once() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let opts = UploadOptions::default();
    let mut up = uploader(&server, opts);

    // Missing directory: nothing to do yet.
    up.upload_ready(&d.join("later")).await.unwrap();

    write_result(d, "a", "passed");
    let full = result_json("b", "failed", json!([]));
    write(d, "b-result.json", &full[..full.len() / 2]);

    // First sight: nothing is sent until the files stop changing.
    up.upload_ready(d).await.unwrap();
    assert!(server.find("POST", "/api/upload/test-result").is_empty());

    // Stable: `a` goes, the half-written `b` waits silently.
    up.upload_ready(d).await.unwrap();
    assert_eq!(all_sent(&server), vec!["a"]);
    assert!(up.report().problems.is_empty());
    up.upload_ready(d).await.unwrap();
    assert!(up.report().problems.is_empty());

    // `b` is completed, a container arrives after its result was sent.
    write(d, "b-result.json", &full);
    write(
        d,
        "c-container.json",
        json!({"uuid": "c", "children": ["a"], "befores": [{"name": "setUp"}]}).to_string(),
    );
    write(d, "never-result.json", "{ not json");
    up.upload_ready(d).await.unwrap();
    up.upload_ready(d).await.unwrap();
    assert_eq!(all_sent(&server), vec!["a", "b"]);
    let fixtures = server.find("POST", "/test-fixture-result");
    assert_eq!(fixtures.len(), 1);
    assert_eq!(
        fixtures[0].path,
        "/api/upload/test-result/1000/test-fixture-result"
    );
    assert!(up.report().problems.is_empty());

    // The final pass reports what never became valid and sends nothing twice.
    write_result(d, "late", "passed");
    up.finish(d).await.unwrap();
    assert_eq!(all_sent(&server), vec!["a", "b", "late"]);
    let problems = &up.report().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].path.ends_with("never-result.json"));
    assert_eq!(server.find("POST", "/api/upload/session").len(), 1);
    assert_eq!(server.find("POST", "/test-fixture-result").len(), 1);
    assert_eq!(up.report().results, 3);

    let err = up.finish(&d.join("later")).await.unwrap_err();
    assert!(matches!(err, UploadError::Input { .. }));
}

#[tokio::test]
async fn many_files_are_processed_in_bounded_chunks() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..25 {
        write_result(dir.path(), &format!("r{i:02}"), "passed");
    }
    let mut up = uploader(
        &server,
        UploadOptions {
            batch_size: 2,
            concurrency: 3,
            ..Default::default()
        },
    );
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert_eq!(up.report().results, 25);
    let batches = server.sent_uuids();
    assert!(batches.iter().all(|b| b.len() <= 2));
    assert_eq!(all_sent(&server).len(), 25);
    // Files are read in sorted chunks of batch_size × concurrency: no batch mixes
    // files from two chunks.
    for b in &batches {
        let chunk = |u: &str| u[1..].parse::<usize>().unwrap() / 6;
        assert!(b.iter().all(|u| chunk(u) == chunk(&b[0])), "{b:?}");
    }
}

#[tokio::test]
async fn requests_in_flight_stay_within_the_concurrency() {
    let server = TestServer::start().await;
    server.set_delay(50);
    let dir = tempfile::tempdir().unwrap();
    for i in 0..40 {
        write_attached(dir.path(), &format!("r{i:02}"));
    }
    let mut up = uploader(
        &server,
        UploadOptions {
            batch_size: 5,
            concurrency: 3,
            ..Default::default()
        },
    );
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert_eq!(up.report().results, 40);
    assert_eq!(up.report().attachments, 40);
    assert_eq!(server.max_in_flight(), 3);
}

#[tokio::test]
async fn eight_requests_are_in_flight_unless_told_otherwise() {
    let server = TestServer::start().await;
    server.set_delay(50);
    let dir = tempfile::tempdir().unwrap();
    for i in 0..40 {
        write_result(dir.path(), &format!("r{i:02}"), "passed");
    }
    let mut up = uploader(
        &server,
        UploadOptions {
            batch_size: 2,
            ..Default::default()
        },
    );
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert_eq!(up.report().results, 40);
    // A chunk is eight batches of two, all sent at once.
    assert_eq!(server.max_in_flight(), 8);
}

#[tokio::test]
async fn answers_with_only_result_ids_are_matched_by_position() {
    let server = TestServer::with(|r, _| {
        (r.path == "/api/upload/test-result").then(|| {
            let n = r.json()["results"].as_array().map_or(0, Vec::len);
            let ids: Vec<i64> = (0..n as i64).map(|i| 500 + i).collect();
            Reply::new(200, json!({ "resultIds": ids }).to_string())
        })
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x-attachment.txt", "x");
    write(
        dir.path(),
        "a-result.json",
        result_json(
            "a",
            "passed",
            json!([{"name": "x", "source": "x-attachment.txt"}]),
        ),
    );
    let mut up = uploader(&server, UploadOptions::default());
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert_eq!(up.report().results, 1);
    assert_eq!(
        server.find("POST", "/attachment")[0].path,
        "/api/upload/test-result/500/attachment"
    );
}

/// A chunk's attachments go while the next chunk's results do: the second
/// chunk's first batch reaches the server before the first chunk's last
/// attachment request, and the two together never pass the concurrency.
#[tokio::test]
async fn attachments_of_a_chunk_go_alongside_the_next_chunks_results() {
    let server = TestServer::start().await;
    server.set_delay(40);
    let dir = tempfile::tempdir().unwrap();
    for i in 0..8 {
        write_attached(dir.path(), &format!("r{i}"));
    }
    let mut up = uploader(
        &server,
        UploadOptions {
            batch_size: 2,
            concurrency: 2,
            ..Default::default()
        },
    );
    up.upload_paths(&[dir.path().to_path_buf()]).await.unwrap();
    assert_eq!(up.report().results, 8);
    assert_eq!(up.report().attachments, 8);
    assert!(server.max_in_flight() <= 2);
    // This test server has no bulk route: one request per result, after
    // one bulk attempt (answered 404, then remembered).
    let log: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        log.iter().filter(|p| p.ends_with("/bulk")).count(),
        1,
        "{log:#?}"
    );
    let attachment_at = |uuid_id: usize| {
        log.iter()
            .position(|p| p == &format!("/api/upload/test-result/{uuid_id}/attachment"))
            .unwrap_or_else(|| panic!("attachment of {uuid_id} in {log:#?}"))
    };
    // Results r0..r3 (chunk one) have ids 1000..1003.
    let last_of_first_chunk = (1000..1004).map(attachment_at).max().unwrap();
    let batches: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, p)| *p == "/api/upload/test-result")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(batches.len(), 4, "{log:#?}");
    assert!(
        batches[2] < last_of_first_chunk,
        "the second chunk's results wait for the first chunk's attachments: {log:#?}"
    );
}
