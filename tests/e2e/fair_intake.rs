//! A project token that starts as many attachment uploads as the server
//! streams at once and never finishes them: another project's CI job still
//! uploads its results and attachments (the real CLI against the real
//! server), because one project holds at most half of the server's intake.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

/// Bodies the server streams to disk at once (`blobs::MAX_STREAMS`).
const STREAMS: usize = 32;
/// More than one write buffer of the store (256 KiB): each held body has a
/// temporary file, so the test can see the server holding it.
const SENT: usize = 300 * 1024;
/// These tests hold bodies open on purpose, longer than the default body
/// pace allows (`listen::pace`) under a loaded machine: the bounds under test
/// must hold without the pace's help.
const HOLD_BODIES: &[&str] = &["--header-timeout", "300s"];

/// The connections of the servers the tests on per-project places start.
const CONNECTIONS: usize = 40;

/// A server of [`CONNECTIONS`] connections, with `args`.
fn limited_server(args: &[&str]) -> TestServer {
    let max = CONNECTIONS.to_string();
    let mut all = args.to_vec();
    all.extend(["--max-connections", &max]);
    TestServer::start_with(&all)
}

/// Temporary files of bodies being received
/// (`<data>/blobs/<fan-out>/.incoming.*`).
fn incoming(data: &Path) -> usize {
    let Ok(fans) = std::fs::read_dir(data.join("blobs")) else {
        return 0;
    };
    fans.flatten()
        .filter(|f| f.path().is_dir())
        .flat_map(|f| std::fs::read_dir(f.path()).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".incoming."))
        .count()
}

/// A new project's CI job (GitHub run `run`) uploads allure-pytest's results
/// with the real CLI; answers the results stored, every one of them.
fn another_projects_upload(admin: &Api, url: &str, run: &str) -> Vec<Value> {
    let (project, token) = admin.project_with_token(&format!("team of run {run}"));
    let dir = fixture("tests/fixtures/allure-pytest");
    Cli::new(url, &token)
        .github(run, "fair")
        .env("ALLURE_PROJECT_ID", project)
        .run(&["upload", dir.to_str().unwrap()])
        .ok();
    let scoped = admin.with_token(&token);
    let launch = scoped.launches(project)[0]["id"].as_i64().unwrap();
    let results = scoped.results(launch);
    assert_eq!(results.len(), count_files(&dir, "-result.json"));
    results
}

/// An attachment upload of `token` to `result` that announces 64 MiB, sends
/// [`SENT`] bytes of it and then nothing: the connection is kept open.
fn stalled_attachment(url: &str, token: &str, result: i64) -> TcpStream {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    let boundary = "stalledBoundary42";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"never.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    write!(
        s,
        "POST /api/upload/test-result/{result}/attachment HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: api-token {token}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\n\r\n{head}",
        64 * 1024 * 1024
    )
    .unwrap();
    s.write_all(&vec![b'x'; SENT]).unwrap();
    s.flush().unwrap();
    s
}

#[test]
fn a_project_holding_uploads_open_leaves_room_for_other_projects() {
    let server = TestServer::start_with(HOLD_BODIES);
    let admin = server.api();
    let data = server.dir.path().join("data");

    // Project 1's token, with a result of its own to attach files to.
    let start = admin.post(
        "/api/upload/start",
        &json!({"projectId": 1, "ci": {"type": "github"}, "job": {"uid": "slow"},
                "jobRun": {"uid": "1"}, "launch": {"name": "slow"}}),
    );
    let session = admin.post(
        "/api/upload/session",
        &json!({"jobRunId": start["jobRunId"]}),
    )["id"]
        .clone();
    let result = admin.post(
        "/api/upload/test-result",
        &json!({"testSessionId": session, "results": [{"uuid": "slow-1", "name": "t", "status": "passed"}]}),
    )["results"][0]["id"]
        .as_i64()
        .unwrap();
    let hostile = admin.post("/api/project/1/token", &Value::Null)["token"]
        .as_str()
        .unwrap()
        .to_string();

    // It opens as many uploads as the server streams at once, and stalls.
    let held: Vec<TcpStream> = (0..STREAMS)
        .map(|_| stalled_attachment(&server.url, &hostile, result))
        .collect();
    let until = Instant::now() + Duration::from_secs(60);
    while incoming(&data) < STREAMS / 2 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        incoming(&data),
        STREAMS / 2,
        "project 1's stalled bodies being received"
    );

    // Project 2's CI job uploads results with attachments meanwhile.
    let results = another_projects_upload(&admin, &server.url, "4242");
    let attached: i64 = results
        .iter()
        .map(|r| r["attachmentCount"].as_i64().unwrap())
        .sum();
    assert!(attached > 0, "{results:?}");
    // Project 1 still holds its half: nothing of it was cut.
    assert_eq!(incoming(&data), STREAMS / 2);
    drop(held);
}

/// Sends the header of a launch of `token` that announces a 1,000-byte body
/// and waits to be told to send it (`Expect: 100-continue`); answers the
/// connection and the first line the server sent (`HTTP/1.1 100 Continue`
/// once the request holds its place and the body is being read).
fn launch_expecting(url: &str, token: &str) -> (TcpStream, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /api/launch HTTP/1.1\r\nHost: {addr}\r\nAuthorization: api-token {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
    )
    .unwrap();
    let first = read_first_line(&mut s, "the header");
    if first.starts_with("HTTP/1.1 100 ") {
        // The interim answer's empty line.
        let mut end = [0u8; 2];
        s.read_exact(&mut end).unwrap();
        assert_eq!(&end, b"\r\n");
    }
    (s, first)
}

/// A project token that opens as many requests as the server has
/// connections and sends their bodies as slowly as it may holds at most half
/// of them: its next requests are refused at once (503 `busy`) and closed,
/// and another project's CI job uploads meanwhile.
#[test]
fn a_project_holding_many_requests_open_leaves_connections_for_other_projects() {
    let server = limited_server(HOLD_BODIES);
    let admin = server.api();
    let hostile = admin.post("/api/project/1/token", &Value::Null)["token"]
        .as_str()
        .unwrap()
        .to_string();

    let mut held = Vec::new();
    for i in 0..CONNECTIONS / 2 {
        let (s, first) = launch_expecting(&server.url, &hostile);
        assert_eq!(first, "HTTP/1.1 100 Continue", "request {i}");
        held.push(s);
    }
    for i in CONNECTIONS / 2..CONNECTIONS {
        let (mut s, first) = launch_expecting(&server.url, &hostile);
        assert_eq!(first, "HTTP/1.1 503 Service Unavailable", "request {i}");
        let mut rest = String::new();
        s.read_to_string(&mut rest).unwrap();
        assert!(rest.contains(r#""code":"busy""#), "{rest}");
        assert!(rest.contains("requests in flight"), "{rest}");
    }

    // Project 2's CI job uploads results with attachments meanwhile.
    let results = another_projects_upload(&admin, &server.url, "4343");
    assert!(!results.is_empty());
    // Project 1's requests are still open, told nothing more.
    for s in &mut held {
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("a held request was answered or closed: {other:?}"),
        }
    }
    drop(held);
}

/// Sends the request `head` (with `Host:` and the empty line added) and
/// answers the connection and the answer's first line, without reading on.
fn first_line_of(url: &str, head: &str) -> (TcpStream, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "{head}\r\nHost: {addr}\r\n\r\n").unwrap();
    let first = read_first_line(&mut s, head);
    (s, first)
}

/// The first line of the answer on `s` (within 30 s), byte by byte so that
/// nothing after it is read; `what` names the request in a failure.
fn read_first_line(s: &mut TcpStream, what: &str) -> String {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match s.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            other => panic!("no answer to {what}: {other:?}"),
        }
    }
    String::from_utf8_lossy(&line).trim().to_string()
}

/// Reads the rest of a refused answer and checks it is the busy one.
fn refused_busy(mut s: TcpStream, first: &str, what: &str) {
    assert_eq!(first, "HTTP/1.1 503 Service Unavailable", "{what}");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest).to_lowercase();
    assert!(rest.contains("retry-after: 5"), "{what}: {rest}");
    assert!(rest.contains("requests in flight"), "{what}: {rest}");
}

/// Opens `half` requests with `open`, each answered 200 and held open, and
/// one more, refused busy: answers the held connections.
fn fill_the_half(
    half: usize,
    open: impl Fn() -> (TcpStream, String),
    what: &str,
) -> Vec<TcpStream> {
    let held = open_served(half, &open, what);
    let (s, first) = open();
    refused_busy(s, &first, &format!("a {what} past the project's half"));
    held
}

/// Opens `n` requests with `open`, each answered 200 and held open.
fn open_served(n: usize, open: impl Fn() -> (TcpStream, String), what: &str) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let (s, first) = open();
            assert_eq!(first, "HTTP/1.1 200 OK", "{what} {i}");
            s
        })
        .collect()
}

/// Opens requests with `open` until one is answered 200 (its place came
/// back), within `limit`: answers its connection.
fn served_within(limit: Duration, open: impl Fn() -> (TcpStream, String)) -> TcpStream {
    let until = Instant::now() + limit;
    loop {
        let (s, first) = open();
        if first == "HTTP/1.1 200 OK" {
            return s;
        }
        assert!(
            Instant::now() < until,
            "the places never came back: {first}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A project token's live pages (event streams, open for as long as the
/// page is) hold places among the project's requests in flight while they
/// last: past half of the server's connections its further pages are
/// refused (503 `busy`), another project's CI job uploads meanwhile, and the
/// places come back when the pages close.
#[test]
fn live_pages_of_a_project_hold_at_most_half_of_the_connections() {
    let server = limited_server(&[]);
    let admin = server.api();
    let hostile = admin.post("/api/project/1/token", &Value::Null)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let launch = admin
        .with_token(&hostile)
        .post("/api/launch", &json!({"name": "watched", "projectId": 1}))["id"]
        .as_i64()
        .unwrap();
    let ui = UiSession::login_with(&server.url, &hostile);
    let live = || {
        first_line_of(
            &server.url,
            &format!(
                "GET /launch/{launch}/events HTTP/1.1\r\nCookie: {}",
                ui.cookie()
            ),
        )
    };

    let held = fill_the_half(CONNECTIONS / 2, live, "live page");
    let (s, first) = first_line_of(
        &server.url,
        &format!("GET /launches HTTP/1.1\r\nCookie: {}", ui.cookie()),
    );
    refused_busy(s, &first, "a page past the project's half");

    let results = another_projects_upload(&admin, &server.url, "4545");
    assert!(!results.is_empty());

    // Closed pages give their places back (at the stream's next write at
    // the latest: its keep-alive comes every 15 s).
    drop(held);
    served_within(Duration::from_secs(60), live);
}

/// A token of project 1 and, uploaded by the real CLI with it, an 8 MiB
/// attachment of project 1's: the token, the attachment's id, its bytes.
fn a_projects_large_attachment(server: &TestServer) -> (String, i64, Vec<u8>) {
    const SIZE: usize = 8 * 1024 * 1024;
    let admin = server.api();
    let token = admin.post("/api/project/1/token", &Value::Null)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = server.dir.path().join("big-results");
    std::fs::create_dir_all(&dir).unwrap();
    let bytes: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("big-attachment.bin"), &bytes).unwrap();
    std::fs::write(
        dir.join("big-result.json"),
        json!({"uuid": "big", "name": "big", "status": "passed",
               "attachments": [{"name": "big", "source": "big-attachment.bin",
                                "type": "application/octet-stream"}]})
        .to_string(),
    )
    .unwrap();
    Cli::new(&server.url, &token)
        .github("4646", "big")
        .env("ALLURE_PROJECT_ID", 1)
        .run(&["upload", dir.to_str().unwrap()])
        .ok();
    let scoped = admin.with_token(&token);
    let launch = scoped.launches(1)[0]["id"].as_i64().unwrap();
    let result = scoped.results(launch)[0]["id"].as_i64().unwrap();
    let attachment = scoped.get(&format!("/api/testresult/{result}"))["attachments"][0]["id"]
        .as_i64()
        .unwrap();
    (token, attachment, bytes)
}

/// A download of `attachment` with `token`: the connection and the answer's
/// first line, nothing read after it.
fn download_of(url: &str, token: &str, attachment: i64) -> (TcpStream, String) {
    first_line_of(
        url,
        &format!(
            "GET /api/attachment/{attachment}/content HTTP/1.1\r\nAuthorization: api-token {token}"
        ),
    )
}

/// An attachment download its client does not read holds its place among
/// the project's requests in flight until it is sent: a project token that
/// opens as many downloads as the server has connections holds half of
/// them, its further requests are refused (503 `busy`), another project's
/// CI job uploads meanwhile, and a download read to its end gives its place
/// back on a connection kept open.
#[test]
fn unread_downloads_of_a_project_hold_at_most_half_of_the_connections() {
    // Unread answers are cut by the pace (`listen::pace`): not in this test.
    let server = limited_server(HOLD_BODIES);
    let admin = server.api();
    let (hostile, attachment, bytes) = a_projects_large_attachment(&server);
    let download = || download_of(&server.url, &hostile, attachment);

    let mut held = fill_the_half(CONNECTIONS / 2, download, "download");

    let results = another_projects_upload(&admin, &server.url, "4747");
    assert!(!results.is_empty());

    // One download read to its end: the very bytes, and its place is back
    // although its connection stays open.
    let mut s = held.pop().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(
        head.contains(&format!("content-length: {}", bytes.len())),
        "{head}"
    );
    let mut body = vec![0u8; bytes.len()];
    s.read_exact(&mut body).unwrap();
    assert!(body == bytes, "the downloaded bytes differ");
    held.push(served_within(Duration::from_secs(30), download));
    drop(s);
    drop(held);
}

/// Downloads their client stops reading are cut once they break the pace
/// (no progress for `--header-timeout`): their connections are closed
/// before the whole answer went, and their places come back, so a project
/// token cannot keep its half with answers it never reads. A download read
/// at once is whole.
#[test]
fn unread_downloads_are_cut_at_the_pace_and_give_their_places_back() {
    let server = limited_server(&["--header-timeout", "2s"]);
    let (token, attachment, bytes) = a_projects_large_attachment(&server);
    let download = || download_of(&server.url, &token, attachment);

    let held = open_served(CONNECTIONS / 2, download, "first round's download");
    std::thread::sleep(Duration::from_secs(4));
    for (i, mut s) in held.into_iter().enumerate() {
        let mut got = Vec::new();
        let read = s.read_to_end(&mut got);
        assert!(
            got.len() < bytes.len(),
            "download {i}: {} bytes, {read:?}: the unread answer was not cut",
            got.len()
        );
    }
    // Their places are back: the project's half again, and one read at once.
    let held = open_served(CONNECTIONS / 2, download, "second round's download");
    drop(held);
    let mut s = served_within(Duration::from_secs(30), download);
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .unwrap_or_else(|e| panic!("a download read at once: {e}"));
    assert!(
        rest.ends_with(&bytes[bytes.len() - 4096..]),
        "the download read at once is whole"
    );
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Sends `path` a body announced as 64 MiB, 60 MiB of it in 1 MiB writes,
/// until a write has waited 2 s (the server reads no more) or the server
/// closed the connection; answers the connection, still open when it is.
fn large_body(url: &str, path: &str, auth: Option<&str>, content_type: &str) -> TcpStream {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let auth = auth
        .map(|t| format!("Authorization: api-token {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n",
        64 * 1024 * 1024 - 1
    );
    if s.write_all(head.as_bytes()).is_err() {
        return s;
    }
    let mib = vec![b' '; 1024 * 1024];
    for _ in 0..60 {
        if s.write_all(&mib).is_err() {
            break;
        }
    }
    s
}

/// Strangers sending logins and a project token sending JSON, eight large
/// bodies each at once, all kept open: the server holds at most its bounds
/// of them (a login is at most 16 KiB; JSON bodies of one project at most
/// 64 MiB), not every byte sent.
#[test]
fn many_large_bodies_at_once_stay_within_the_servers_bounds() {
    let server = TestServer::start_with(HOLD_BODIES);
    let admin = server.api();
    let token = admin.post("/api/project/1/token", &Value::Null)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let idle = rss_kib(server.pid());

    let senders: Vec<_> = (0..8)
        .flat_map(|_| {
            let (url, token) = (server.url.clone(), token.clone());
            let url2 = url.clone();
            [
                std::thread::spawn(move || {
                    large_body(
                        &url,
                        "/api/uaa/oauth/token",
                        None,
                        "application/x-www-form-urlencoded",
                    )
                }),
                std::thread::spawn(move || {
                    large_body(&url2, "/api/launch", Some(&token), "application/json")
                }),
            ]
        })
        .collect();
    let open: Vec<TcpStream> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let grew_mib = rss_kib(server.pid()).saturating_sub(idle) / 1024;
    assert!(
        grew_mib < 200,
        "the server grew by {grew_mib} MiB for bodies it should bound"
    );

    eprintln!("server memory: +{grew_mib} MiB over idle");

    // Another project's upload goes in meanwhile.
    another_projects_upload(&admin, &server.url, "4243");
    drop(open);
}

/// A text field of the web UI's manual result form longer than its bound
/// (64 KiB) is refused once the bound is passed: the server does not hold
/// the rest of it (it used to read the whole field, up to 256 MiB, first).
#[test]
fn a_manual_form_field_too_long_is_refused_before_the_rest_is_read() {
    let server = TestServer::start_with(HOLD_BODIES);
    let launch = server
        .api()
        .post("/api/launch", &json!({"name": "manual", "projectId": 1}))["id"]
        .as_i64()
        .unwrap();
    let ui = UiSession::login(&server.url);
    let page = ui.get(&format!("/launch/{launch}"));
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the page's CSRF token")
        .to_string();

    let addr = server.url.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let boundary = "manualBoundary42";
    let field_mib = 100;
    write!(
        s,
        "POST /launch/{launch}/manual HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\n",
        ui.cookie(),
        field_mib * 1024 * 1024 + 1024
    )
    .unwrap();
    let mut answer = s.try_clone().unwrap();
    // Long enough for any answer; a server that waits for the whole field
    // (which is never sent whole) gives none.
    answer
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut head = [0u8; 64];
        let n = std::io::Read::read(&mut answer, &mut head).unwrap_or(0);
        String::from_utf8_lossy(&head[..n]).into_owned()
    });
    let mib = vec![b'm'; 1024 * 1024];
    let mut sent = 0;
    while sent < field_mib && !reader.is_finished() {
        if s.write_all(&mib).is_err() {
            break;
        }
        sent += 1;
    }
    let status = reader.join().unwrap();
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    assert!(
        sent < field_mib / 2,
        "{sent} MiB of the field were taken before the answer"
    );
}
