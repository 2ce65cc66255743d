//! Attachments of many results in few requests (`POST
//! /api/upload/attachment/bulk`), and the same upload against a server
//! without that route (an older onelaunch, another TestOps server), which
//! gets one request per result: either way the server holds every attachment
//! the real allure-pytest output names, byte for byte, and the CLI's count is
//! the server's.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::*;

const BULK: &str = "/api/upload/attachment/bulk";

/// `(result uuid, file name, size, sha-256)` of attachments.
type Attachments = BTreeSet<(String, String, i64, String)>;

/// An HTTP proxy in front of one server, one request per connection, that
/// counts the requests by kind and, with `refuse_bulk`, answers the bulk
/// route 404 itself as a server without it does.
struct Proxy {
    url: String,
    bulk: Arc<AtomicUsize>,
    per_result: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(backend: &str, refuse_bulk: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = Proxy {
            url: format!("http://{}", listener.local_addr().unwrap()),
            bulk: Arc::default(),
            per_result: Arc::default(),
        };
        let backend = backend.trim_start_matches("http://").to_string();
        let (bulk, per_result) = (proxy.bulk.clone(), proxy.per_result.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (backend, bulk, per_result) =
                    (backend.clone(), bulk.clone(), per_result.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &backend, refuse_bulk, &bulk, &per_result);
                });
            }
        });
        proxy
    }
}

/// The request head (up to the blank line), read byte by byte.
fn head(from: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if from.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn serve(
    mut client: TcpStream,
    backend: &str,
    refuse_bulk: bool,
    bulk: &AtomicUsize,
    per_result: &AtomicUsize,
) -> std::io::Result<()> {
    let head = head(&mut client)?;
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    if path.starts_with(BULK) {
        bulk.fetch_add(1, Ordering::Relaxed);
    } else if path.starts_with("/api/upload/test-result/") && path.ends_with("/attachment") {
        per_result.fetch_add(1, Ordering::Relaxed);
    }
    let lines: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    if refuse_bulk && path.starts_with(BULK) {
        // Read the body as a server does, then answer like a missing route.
        let len: u64 = lines
            .iter()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("the bulk request has a Content-Length");
        std::io::copy(&mut (&mut client).take(len), &mut std::io::sink())?;
        let body = r#"{"code":"not_found","message":"no route"}"#;
        write!(
            client,
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    let mut server = TcpStream::connect(backend)?;
    write!(
        server,
        "{}\r\nConnection: close\r\n\r\n",
        lines.join("\r\n")
    )?;
    let (mut c2, mut s2) = (client.try_clone()?, server.try_clone()?);
    let up = std::thread::spawn(move || std::io::copy(&mut c2, &mut s2));
    std::io::copy(&mut server, &mut client)?;
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
    Ok(())
}

/// `(result uuid, file name, size, sha-256)` of every attachment the results
/// in `dir` name (top level and in steps), from the files themselves.
fn named_in(dir: &Path) -> Attachments {
    fn walk(v: &Value, name: &str, dir: &Path, out: &mut Attachments) {
        for a in v["attachments"].as_array().into_iter().flatten() {
            let source = a["source"].as_str().unwrap();
            let bytes = std::fs::read(dir.join(source)).unwrap();
            out.insert((
                name.to_string(),
                source.to_string(),
                bytes.len() as i64,
                hex::encode(Sha256::digest(&bytes)),
            ));
        }
        for s in v["steps"].as_array().into_iter().flatten() {
            walk(s, name, dir, out);
        }
    }
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with("-result.json") {
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            walk(&v, v["uuid"].as_str().unwrap(), dir, &mut out);
        }
    }
    out
}

/// The same, as the server holds it: every attachment of the launch with the
/// digest of the bytes it serves.
fn held(server: &TestServer, launch: i64) -> Attachments {
    let api = server.api();
    let http = reqwest::blocking::Client::new();
    let mut out = BTreeSet::new();
    for r in api.results(launch) {
        let detail = api.get(&format!("/api/testresult/{}", r["id"]));
        for a in detail["attachments"].as_array().unwrap() {
            if a["stored"] != true {
                continue;
            }
            let bytes = http
                .get(format!("{}/api/attachment/{}/content", server.url, a["id"]))
                .header("Authorization", format!("api-token {TOKEN}"))
                .send()
                .unwrap()
                .bytes()
                .unwrap();
            out.insert((
                detail["result"]["uuid"].as_str().unwrap().to_string(),
                a["fileName"].as_str().unwrap().to_string(),
                a["size"].as_i64().unwrap(),
                hex::encode(Sha256::digest(&bytes)),
            ));
        }
    }
    out
}

/// Uploads the allure-pytest output through a proxy; answers what the server
/// holds and the proxy's counts (bulk requests, per-result requests).
fn upload_through(refuse_bulk: bool) -> (Attachments, usize, usize) {
    let server = TestServer::start();
    let proxy = Proxy::start(&server.url, refuse_bulk);
    let dir = fixture("tests/fixtures/frameworks/allure-pytest/results");
    let run = Cli::new(&proxy.url, TOKEN)
        .run(&["upload", dir.to_str().unwrap()])
        .ok();
    let launch = server.api().launches(1)[0]["id"].as_i64().unwrap();
    let held = held(&server, launch);
    assert_eq!(
        held,
        named_in(&dir),
        "every named attachment, byte for byte"
    );
    assert!(
        run.all().contains(&format!("{} attachments", held.len())),
        "the CLI counts what the server holds: {}",
        run.all()
    );
    (
        held,
        proxy.bulk.load(Ordering::Relaxed),
        proxy.per_result.load(Ordering::Relaxed),
    )
}

#[test]
fn attachments_of_many_results_go_in_one_request() {
    let (held, bulk, per_result) = upload_through(false);
    assert!(held.len() >= 5, "the fixture names attachments: {held:?}");
    let results: BTreeSet<&String> = held.iter().map(|h| &h.0).collect();
    assert!(results.len() >= 3, "of several results: {results:?}");
    assert_eq!(
        (bulk, per_result),
        (1, 0),
        "one bulk request, none per result"
    );
}

#[test]
fn a_server_without_the_bulk_route_gets_one_request_per_result() {
    let (held, bulk, per_result) = upload_through(true);
    let results: BTreeSet<&String> = held.iter().map(|h| &h.0).collect();
    assert_eq!(bulk, 1, "asked once, then remembered");
    assert_eq!(per_result, results.len(), "one request per result");
}
