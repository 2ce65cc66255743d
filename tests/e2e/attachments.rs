//! Attachments on the real server: large bodies stream to disk (the server's
//! memory does not grow with their size), stored copies are checked against
//! their digest before they are served, storing the same bytes again repairs
//! a damaged copy, and downloads are plain downloads (no sniffing, a safe
//! file name).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::blocking::multipart::{Form, Part};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::*;

const MIB: u64 = 1024 * 1024;

/// Deterministic bytes generated while read: a 1 MiB block of pseudo-random
/// bytes (one per seed) repeated, each repetition stamped with its number.
struct Gen {
    block: Vec<u8>,
    pos: u64,
    len: u64,
}

impl Gen {
    fn new(seed: u64, len: u64) -> Gen {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let block = (0..MIB)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        Gen { block, pos: 0, len }
    }
}

impl Read for Gen {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len - self.pos;
        if left == 0 {
            return Ok(0);
        }
        let at = (self.pos % MIB) as usize;
        let n = buf.len().min(left as usize).min(MIB as usize - at);
        buf[..n].copy_from_slice(&self.block[at..at + n]);
        // The repetition's number in its first 8 bytes.
        let rep = (self.pos / MIB).to_le_bytes();
        for (i, b) in buf[..n]
            .iter_mut()
            .enumerate()
            .take(8usize.saturating_sub(at))
        {
            *b = rep[at + i];
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A reader that hashes what is read through it (what was sent).
struct Tee<R> {
    inner: R,
    hash: std::sync::Arc<std::sync::Mutex<Sha256>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.lock().unwrap().update(&buf[..n]);
        Ok(n)
    }
}

/// SHA-256 of everything a reader yields, read in chunks.
fn sha_of(mut r: impl Read) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return hex::encode(h.finalize());
        }
        h.update(&buf[..n]);
    }
}

/// `VmRSS` and `VmHWM` (peak) of a process, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()
        .unwrap()
}

/// A launch with one result per name; answers the result ids.
fn results(api: &Api, names: &[&str]) -> Vec<i64> {
    let launch = api.post(
        "/api/launch",
        &json!({"name": "attachments", "projectId": 1}),
    );
    let session = api.post("/api/upload/session", &json!({"launchId": launch["id"]}));
    let results: Vec<Value> = names
        .iter()
        .map(|n| json!({"uuid": n, "name": n, "status": "passed"}))
        .collect();
    let up = api.post(
        "/api/upload/test-result",
        &json!({"testSessionId": session["id"], "results": results}),
    );
    up["resultIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

fn upload(url: &str, rid: i64, part: Part) -> u16 {
    let r = http()
        .post(format!("{url}/api/upload/test-result/{rid}/attachment"))
        .header("Authorization", format!("api-token {TOKEN}"))
        .multipart(Form::new().percent_encode_noop().part("file", part))
        .send()
        .unwrap();
    r.status().as_u16()
}

fn attachments_of(api: &Api, rid: i64) -> Vec<Value> {
    api.get(&format!("/api/testresult/{rid}"))["attachments"]
        .as_array()
        .unwrap()
        .clone()
}

fn blob_path(server: &TestServer, sha: &str) -> PathBuf {
    server
        .work_dir()
        .join("data/blobs")
        .join(&sha[..2])
        .join(sha)
}

fn download(server: &TestServer, id: &Value) -> reqwest::blocking::Response {
    http()
        .get(format!("{}/api/attachment/{id}/content", server.url))
        .header("Authorization", format!("api-token {TOKEN}"))
        .send()
        .unwrap()
}

/// Four 200 MB attachments at once: the server's peak memory stays within
/// 100 MB of what it used before, and every stored copy has the right digest.
#[test]
fn large_attachments_stream_without_growing_server_memory() {
    const SIZE: u64 = 200 * MIB;
    const LIMIT: u64 = 100 * MIB;
    let server = TestServer::start();
    let api = server.api();
    let rids = results(&api, &["a0", "a1", "a2", "a3"]);
    // Warm the paths once with a small attachment, then take the baseline.
    let warm = Part::bytes(b"warm".to_vec()).file_name("warm.txt");
    assert_eq!(upload(&server.url, rids[0], warm), 202);
    let (rss, hwm) = memory(server.pid());
    let idle = rss.max(hwm);

    let uploads: Vec<_> = rids
        .iter()
        .enumerate()
        .map(|(i, &rid)| {
            let url = server.url.clone();
            std::thread::spawn(move || {
                let hash = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
                let body = Tee {
                    inner: Gen::new(i as u64 + 1, SIZE),
                    hash: hash.clone(),
                };
                let part = Part::reader_with_length(body, SIZE)
                    .file_name(format!("big-{i}.bin"))
                    .mime_str("application/octet-stream")
                    .unwrap();
                let status = upload(&url, rid, part);
                let sent = hex::encode(hash.lock().unwrap().clone().finalize());
                (status, sent)
            })
        })
        .collect();
    let mut sent = Vec::new();
    for u in uploads {
        let (status, sha) = u.join().unwrap();
        assert_eq!(status, 202);
        sent.push(sha);
    }
    let (_, peak) = memory(server.pid());
    eprintln!(
        "server memory: idle {} MiB, peak {} MiB",
        idle / MIB,
        peak / MIB
    );
    assert!(
        peak <= idle + LIMIT,
        "server peak memory grew by {} MiB (idle {} MiB, peak {} MiB) for 4 x 200 MiB attachments",
        peak.saturating_sub(idle) / MIB,
        idle / MIB,
        peak / MIB
    );

    for (i, &rid) in rids.iter().enumerate() {
        let expected = &sent[i];
        let att = attachments_of(&api, rid)
            .into_iter()
            .find(|a| a["fileName"] == format!("big-{i}.bin"))
            .unwrap();
        assert_eq!(att["size"].as_u64(), Some(SIZE), "{att}");
        let path = blob_path(&server, expected);
        assert_eq!(
            &sha_of(std::fs::File::open(&path).unwrap()),
            expected,
            "{}",
            path.display()
        );
        if i == 0 {
            // The download streams the same bytes.
            let r = download(&server, &att["id"]);
            assert_eq!(r.status().as_u16(), 200);
            assert_eq!(&sha_of(r), expected);
        }
    }
    let leftovers = std::fs::read_dir(server.work_dir().join("data/blobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(leftovers, 0, "temporary files left in the blob store");
}

/// A stored copy that was damaged on disk is refused with a clear message
/// (never served as if it were fine); uploading the same bytes repairs it.
#[test]
fn a_damaged_attachment_is_refused_and_repaired_by_uploading_it_again() {
    let server = TestServer::start();
    let api = server.api();
    let rid = results(&api, &["damaged"])[0];
    // Over 64 KiB: a file of the blob store (a small attachment is a row of
    // the database; its damage is covered by the server's own tests).
    let bytes: Vec<u8> = (0..100_003u32).map(|i| (i % 251) as u8).collect();
    let sha = hex::encode(Sha256::digest(&bytes));
    let part = || Part::bytes(bytes.clone()).file_name("report.bin");
    assert_eq!(upload(&server.url, rid, part()), 202);
    let id = attachments_of(&api, rid)[0]["id"].clone();
    let r = download(&server, &id);
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(&r.bytes().unwrap()[..], &bytes[..]);

    // Truncated on disk (a full disk, a bad copy): refused, not served.
    let path = blob_path(&server, &sha);
    std::fs::write(&path, &bytes[..100]).unwrap();
    let r = download(&server, &id);
    assert_eq!(r.status().as_u16(), 409);
    let body: Value = r.json().unwrap();
    assert_eq!(body["code"], "content_damaged", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("damaged") && message.contains("upload the same file again"),
        "{message}"
    );
    // Uploading the same bytes again repairs the copy.
    assert_eq!(upload(&server.url, rid, part()), 202);
    let r = download(&server, &id);
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(&r.bytes().unwrap()[..], &bytes[..]);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

/// API downloads are downloads: no sniffing, `attachment` disposition with a
/// name that cannot break the header (ASCII fallback and the exact name).
#[test]
fn attachment_downloads_are_not_sniffed_and_name_the_file_safely() {
    let server = TestServer::start();
    let api = server.api();
    let rid = results(&api, &["headers"])[0];
    let part = Part::bytes(b"<html><script>alert(1)</script>".to_vec())
        .file_name("my report (1).html")
        .mime_str("text/html")
        .unwrap();
    assert_eq!(upload(&server.url, rid, part), 202);
    let id = attachments_of(&api, rid)[0]["id"].clone();
    let r = download(&server, &id);
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"my_report__1_.html\"; filename*=UTF-8''my%20report%20%281%29.html"
    );
    assert_eq!(h["content-length"], "31");
}
