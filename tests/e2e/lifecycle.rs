//! Data lifecycle on the real server: deleting a launch removes exactly the
//! stored blobs no other launch references (blobs are shared by content; small
//! ones are rows of the database, larger ones files), retention per project
//! deletes old closed launches (never open or busy ones; one replica at a time
//! on PostgreSQL), and `server gc` finds and removes orphaned blobs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::*;

const SHARED: &str = "the same screenshot bytes in both launches\n";
/// Over 64 KiB: a file of the blob store (the others are database rows).
static ONLY_B: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| "only in launch B, longer\n".repeat(3000));

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every file under `<data>/blobs`, temporary ones included.
fn files_under(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            n += files_under(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

/// Allure results: one result per (name, attachment text).
fn results(dir: &Path, prefix: &str, attachments: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (i, text) in attachments.iter().enumerate() {
        let uuid = format!("{prefix}-{i}");
        let att = format!("{uuid}-attachment.txt");
        std::fs::write(dir.join(&att), text).unwrap();
        let v = json!({
            "uuid": uuid, "historyId": format!("h-{uuid}"), "name": format!("test {i}"),
            "fullName": format!("life.{prefix}.test_{i}"), "status": "passed",
            "start": 1_700_000_000_000i64, "stop": 1_700_000_000_100i64,
            "attachments": [{"name": "log", "source": att, "type": "text/plain"}],
        });
        std::fs::write(dir.join(format!("{uuid}-result.json")), v.to_string()).unwrap();
    }
    dir.to_path_buf()
}

/// Uploads `dir` as pipeline `pipeline` into a new launch; answers its id.
fn upload(cli: &Cli, pipeline: &str, dir: &Path, name: &str) -> i64 {
    let gl = cli.clone().gitlab(pipeline);
    gl.run(&["upload", dir.to_str().unwrap(), "--launch-name", name])
        .ok();
    parse_env(&gl.run(&["job-run", "env"]).ok().stdout)["ALLURE_LAUNCH_ID"]
        .parse()
        .unwrap()
}

/// The launch's attachments as (name of the test, bytes downloaded).
fn attachment_bytes(api: &Api, launch: i64) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for r in api.results(launch) {
        let one = api.get(&format!("/api/testresult/{}", r["id"]));
        for a in one["attachments"].as_array().unwrap() {
            let resp = api
                .http
                .get(format!("{}/api/attachment/{}/content", api.url, a["id"]))
                .header("Authorization", format!("api-token {}", api.token))
                .send()
                .unwrap();
            assert_eq!(resp.status(), 200);
            out.insert(
                r["name"].as_str().unwrap().to_string(),
                resp.bytes().unwrap().to_vec(),
            );
        }
    }
    out
}

fn delete_raw(api: &Api, token: &str, path: &str) -> (u16, Value) {
    let r = api
        .http
        .delete(format!("{}{path}", api.url))
        .header("Authorization", format!("api-token {token}"))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Polls until `done` holds (a background task's effect), failing after a
/// generous deadline.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn deleting_one_of_two_launches_sharing_bytes_keeps_the_others_files() {
    let server = TestServer::start();
    let (api, cli) = (server.api(), server.cli());
    let data = server.work_dir().join("data");
    let work = tempfile::tempdir().unwrap();
    let a = upload(
        &cli,
        "11",
        &results(&work.path().join("a"), "a", &[SHARED, "only in launch A\n"]),
        "A",
    );
    let b = upload(
        &cli,
        "12",
        &results(&work.path().join("b"), "b", &[SHARED, &ONLY_B]),
        "B",
    );
    let before = stored_blobs(&data);
    let (shared, only_a, only_b) = (
        sha(SHARED.as_bytes()),
        sha(b"only in launch A\n"),
        sha(ONLY_B.as_bytes()),
    );
    for s in [&shared, &only_a, &only_b] {
        assert!(before.contains_key(s), "{s} not stored: {before:?}");
    }
    // Up to 64 KiB in the database, larger ones as files.
    let rows = small_blobs(&data);
    assert!(rows.contains_key(&shared) && rows.contains_key(&only_a));
    assert!(data
        .join("blobs")
        .join(&only_b[..2])
        .join(&only_b)
        .is_file());
    let b_bytes = attachment_bytes(&api, b);
    assert_eq!(b_bytes.len(), 2);

    // A project token of another project cannot delete B (not found).
    cli.run(&["project", "create", "other"]).ok();
    let other = cli.run(&["project", "token", "2"]).ok().stdout;
    let other = other.trim();
    let (status, _) = delete_raw(&api, other, &format!("/api/launch/{b}"));
    assert_eq!(status, 404);
    Cli::new(&server.url, other)
        .run(&["launch", "delete", &b.to_string()])
        .code(7);
    assert_eq!(api.get_raw(&format!("/api/launch/{b}")).0, 200);

    // Deleting A: B's attachments still download byte-identical; A's
    // unshared file is gone, the shared one stays.
    let out = cli.run(&["launch", "delete", &a.to_string()]).ok().stdout;
    let after = stored_blobs(&data);
    let gone: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    assert!(gone.contains(&&only_a), "{gone:?}");
    assert!(after.contains_key(&shared) && after.contains_key(&only_b));
    let freed: u64 = gone.iter().map(|k| before[*k]).sum();
    assert_eq!(
        out.trim(),
        format!(
            "Launch [{a}] deleted: 2 result(s), 2 attachment(s); {} stored blob(s) removed, {freed} bytes freed",
            gone.len()
        )
    );
    assert_eq!(api.get_raw(&format!("/api/launch/{a}")).0, 404);
    assert_eq!(attachment_bytes(&api, b), b_bytes);

    // Deleting B (JSON output) leaves no blob at all.
    let out = cli
        .run(&["-o", "json", "launch", "delete", &b.to_string()])
        .ok()
        .stdout;
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["id"], b);
    assert_eq!(v[0]["results"], 2);
    assert_eq!(
        files_under(&data.join("blobs")),
        0,
        "{:?}",
        stored_blobs(&data)
    );
    assert_eq!(small_blobs(&data), BTreeMap::new());
    // Deleting it again is not found.
    cli.run(&["launch", "delete", &b.to_string()]).code(7);
}

#[test]
fn a_busy_launch_needs_force_and_the_ui_deletes_after_confirmation() {
    let server = TestServer::start();
    let (api, cli) = (server.api(), server.cli());
    let work = tempfile::tempdir().unwrap();
    // A job run started and not stopped: the launch is busy.
    let gh = cli.clone().github("77", "build");
    gh.run(&["job-run", "start", "--launch-name", "Busy"]).ok();
    let busy: i64 = parse_env(&gh.run(&["job-run", "env"]).ok().stdout)["ALLURE_LAUNCH_ID"]
        .parse()
        .unwrap();
    let (status, body) = delete_raw(&api, TOKEN, &format!("/api/launch/{busy}"));
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "conflict");
    assert!(
        body["message"].as_str().unwrap().contains("not finished"),
        "{body}"
    );
    let refused = cli.run(&["launch", "delete", &busy.to_string()]).code(1);
    assert!(
        refused.stderr.contains("not finished"),
        "{}",
        refused.stderr
    );
    let (status, _) = delete_raw(&api, TOKEN, &format!("/api/launch/{busy}?force=maybe"));
    assert_eq!(status, 400);
    let r = cli
        .run(&["launch", "delete", &busy.to_string(), "--force"])
        .ok();
    assert!(r.stdout.contains(&format!("Launch [{busy}] deleted")));

    // The UI: the launch page offers the delete form; a post without the
    // confirmation box is refused, with it the launch is gone.
    let quiet = upload(
        &cli,
        "21",
        &results(&work.path().join("q"), "q", &["ui attachment\n"]),
        "Quiet",
    );
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookies = |r: &reqwest::blocking::Response| -> Vec<String> {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
            .collect()
    };
    let url = &server.url;
    let login = http.get(format!("{url}/login")).send().unwrap();
    let jar = cookies(&login);
    let login_csrf = jar
        .iter()
        .find_map(|c| c.strip_prefix("ol_login="))
        .unwrap()
        .to_string();
    let answer = http
        .post(format!("{url}/login"))
        .header("Cookie", jar.join("; "))
        .form(&[
            ("token", TOKEN),
            ("csrf", &login_csrf),
            ("next", "/launches"),
        ])
        .send()
        .unwrap();
    let session = cookies(&answer).join("; ");
    let page = http
        .get(format!("{url}/launch/{quiet}"))
        .header("Cookie", &session)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains(&format!("action=\"/launch/{quiet}/delete\"")),
        "no delete form"
    );
    let marker = "name=\"csrf\" value=\"";
    let at = page.find(marker).unwrap() + marker.len();
    let csrf = &page[at..at + page[at..].find('"').unwrap()];
    let post = |form: &[(&str, &str)]| {
        http.post(format!("{url}/launch/{quiet}/delete"))
            .header("Cookie", &session)
            .form(form)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post(&[("confirm", "yes")]), 403, "no CSRF token");
    assert_eq!(post(&[("csrf", csrf)]), 400, "not confirmed");
    assert_eq!(api.get_raw(&format!("/api/launch/{quiet}")).0, 200);
    assert_eq!(post(&[("csrf", csrf), ("confirm", "yes")]), 303);
    assert_eq!(api.get_raw(&format!("/api/launch/{quiet}")).0, 404);
    assert_eq!(stored_blobs(&server.work_dir().join("data")).len(), 0);
}

/// Launches for retention: an open old one, closed ones, a closed one with
/// an unfinished job run, and the newest (open). Answers
/// (deleted-by-retention, kept).
fn retention_scene(server_url: &str, work: &Path) -> (Vec<i64>, Vec<i64>) {
    let cli = Cli::new(server_url, TOKEN);
    let id = |n: &str, close: bool| {
        let l = upload(
            &cli,
            &format!("3{n}"),
            &results(&work.join(n), n, &[&format!("bytes of {n}\n")]),
            n,
        );
        if close {
            cli.run(&["launch", "close", &l.to_string()]).ok();
        }
        l
    };
    let open_old = id("open-old", false);
    let closed_1 = id("closed-1", true);
    // Closed, but a job run of it is still running.
    let gh = cli.clone().github("88", "still-running");
    gh.run(&["job-run", "start", "--launch-name", "Running"])
        .ok();
    let running: i64 = parse_env(&gh.run(&["job-run", "env"]).ok().stdout)["ALLURE_LAUNCH_ID"]
        .parse()
        .unwrap();
    cli.run(&["launch", "close", &running.to_string()]).ok();
    let closed_2 = id("closed-2", true);
    let newest = id("newest", false);
    (vec![closed_1, closed_2], vec![open_old, running, newest])
}

#[test]
fn retention_deletes_old_closed_launches_only() {
    let server = TestServer::start_with(&["--retention-interval", "200ms"]);
    let (api, cli) = (server.api(), server.cli());
    let work = tempfile::tempdir().unwrap();
    let (doomed, kept) = retention_scene(&server.url, work.path());

    let shown = cli.run(&["project", "retention", "1"]).ok().stdout;
    assert!(shown.contains("retention: off"), "{shown}");
    let set = cli
        .run(&["project", "retention", "1", "--launches", "1"])
        .ok()
        .stdout;
    assert!(set.contains("beyond the newest 1"), "{set}");
    assert_eq!(
        api.get("/api/project/1/retention"),
        json!({"days": null, "launches": 1})
    );
    for l in &doomed {
        eventually(&format!("launch {l} deleted"), || {
            api.get_raw(&format!("/api/launch/{l}")).0 == 404
        });
    }
    for l in &kept {
        assert_eq!(api.get_raw(&format!("/api/launch/{l}")).0, 200, "{l}");
    }
    // Their files went with them; the kept launches' stayed.
    let data = server.work_dir().join("data");
    let on_disk = stored_blobs(&data);
    for n in ["closed-1", "closed-2"] {
        assert!(!on_disk.contains_key(&sha(format!("bytes of {n}\n").as_bytes())));
    }
    for n in ["open-old", "newest"] {
        assert!(on_disk.contains_key(&sha(format!("bytes of {n}\n").as_bytes())));
    }

    // --days keeps --launches; --off clears both; bad input names the field.
    cli.run(&["project", "retention", "1", "--days", "30"]).ok();
    assert_eq!(
        api.get("/api/project/1/retention"),
        json!({"days": 30, "launches": 1})
    );
    cli.run(&["project", "retention", "1", "--off"]).ok();
    assert_eq!(
        api.get("/api/project/1/retention"),
        json!({"days": null, "launches": null})
    );
    let r = api
        .http
        .put(format!("{}/api/project/1/retention", api.url))
        .header("Authorization", format!("api-token {TOKEN}"))
        .json(&json!({"days": 0}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("field `days`"));
}

#[test]
fn retention_on_postgresql_with_two_replicas_deletes_each_launch_once() {
    let Some(pg) = crate::pg::PgCluster::start() else {
        return;
    };
    let url = pg.database("lifecycle");
    let shared = tempfile::tempdir().unwrap();
    let replicas: Vec<TestServer> = (0..2)
        .map(|_| {
            TestServer::start_in(
                Some(shared.path()),
                &["--database-url", &url, "--retention-interval", "100ms"],
            )
        })
        .collect();
    let api = replicas[0].api();
    let work = tempfile::tempdir().unwrap();
    let (doomed, kept) = retention_scene(&replicas[1].url, work.path());
    Cli::new(&replicas[1].url, TOKEN)
        .run(&["project", "retention", "1", "--launches", "1"])
        .ok();
    for l in &doomed {
        eventually(&format!("launch {l} deleted"), || {
            api.get_raw(&format!("/api/launch/{l}")).0 == 404
        });
    }
    for l in &kept {
        assert_eq!(api.get_raw(&format!("/api/launch/{l}")).0, 200, "{l}");
    }
    let logs: String = replicas.iter().map(TestServer::log).collect();
    assert_eq!(
        logs.matches("launch deleted by retention").count(),
        doomed.len(),
        "{logs}"
    );
    assert!(!logs.contains("retention pass failed"), "{logs}");
    assert!(!logs.contains("retention lease not taken"), "{logs}");
}

#[test]
fn server_gc_reports_then_removes_orphans_and_keeps_referenced_blobs() {
    let server = TestServer::start();
    let cli = server.cli();
    let work = tempfile::tempdir().unwrap();
    let data = server.work_dir().join("data");
    upload(
        &cli,
        "41",
        &results(&work.path().join("g"), "g", &["kept bytes\n"]),
        "Kept",
    );
    let referenced = stored_blobs(&data);
    assert!(referenced.contains_key(&sha(b"kept bytes\n")));

    // An orphan (no row names it) and a stale temporary file, both old; a
    // fresh orphan is within the grace period and left alone.
    let orphan_bytes = b"nobody references these bytes";
    let orphan = sha(orphan_bytes);
    let orphan_path = data.join("blobs").join(&orphan[..2]).join(&orphan);
    std::fs::create_dir_all(orphan_path.parent().unwrap()).unwrap();
    std::fs::write(&orphan_path, orphan_bytes).unwrap();
    let tmp = data.join("blobs").join(".incoming.1.1.tmp");
    std::fs::write(&tmp, b"half an upload").unwrap();
    for p in [&orphan_path, &tmp] {
        let ok = std::process::Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    // A small blob in the database that no row references.
    let small_orphan = b"small bytes nobody references";
    put_small_blob(&data, small_orphan);
    let young = sha(b"fresh orphan");
    let young_path = data.join("blobs").join(&young[..2]).join(&young);
    std::fs::create_dir_all(young_path.parent().unwrap()).unwrap();
    std::fs::write(&young_path, b"fresh orphan").unwrap();

    let gc = |extra: &[&str]| {
        let mut args = vec!["server", "gc", "--data", data.to_str().unwrap()];
        args.extend_from_slice(extra);
        cli.run(&args).ok().stdout
    };
    let dry = gc(&["--dry-run"]);
    assert!(
        dry.contains(&format!(
            "orphan blob {orphan} ({} bytes): would remove",
            orphan_bytes.len()
        )),
        "{dry}"
    );
    assert!(
        dry.contains(&format!(
            "orphan blob {} ({} bytes): would remove",
            sha(small_orphan),
            small_orphan.len()
        )),
        "{dry}"
    );
    assert!(dry.contains(".incoming.1.1.tmp"), "{dry}");
    assert!(
        dry.contains("2 orphan blob(s), 1 stale temporary file(s)"),
        "{dry}"
    );
    assert!(dry.contains("dry run: nothing removed"), "{dry}");
    assert!(!dry.contains(&young), "{dry}");
    assert!(orphan_path.exists() && tmp.exists());

    let real = gc(&[]);
    assert!(
        real.contains("removed 3 blob(s) and temporary file(s)"),
        "{real}"
    );
    assert!(!orphan_path.exists() && !tmp.exists());
    assert!(!small_blobs(&data).contains_key(&sha(small_orphan)));
    assert!(young_path.exists());
    let after = stored_blobs(&data);
    for k in referenced.keys() {
        assert!(after.contains_key(k), "{k} removed");
    }
    // The server still serves the kept attachment.
    let api = server.api();
    let kept = api.launches(1)[0]["id"].as_i64().unwrap();
    assert_eq!(attachment_bytes(&api, kept).len(), 1);
}
