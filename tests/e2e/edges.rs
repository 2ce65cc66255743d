//! The server's edges: sockets that connect and stall do not starve it (the
//! connection limit below the open-file limit, the header timeout, the pace of
//! a request body), one SQLite
//! data directory serves one server, and failed token attempts are throttled
//! per client address.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// The soft and hard open-file limits of this process (Linux).
fn own_nofile() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1])
}

/// Makes sure this test process may hold `needed` sockets.
fn ensure_own_nofile(needed: u64) {
    let (soft, hard) = own_nofile();
    if soft >= needed {
        return;
    }
    assert!(
        hard >= needed,
        "this test needs {needed} open files; the hard limit is {hard}"
    );
    let ok = Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={hard}:{hard}"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok && own_nofile().0 >= needed,
        "cannot raise the open-file limit"
    );
}

fn healthz_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[test]
fn stalled_sockets_do_not_starve_the_health_check() {
    const SOCKETS: usize = 1_100;
    ensure_own_nofile(SOCKETS as u64 + 200);
    let server = TestServer::start_with_nofile(1024, &[]);
    let addr = server.url.trim_start_matches("http://").to_string();
    // Each one connects, sends half a request header and stalls.
    let mut stalled = Vec::with_capacity(SOCKETS);
    for _ in 0..SOCKETS {
        let mut s = TcpStream::connect(&addr).expect("connect");
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: ");
        stalled.push(s);
    }
    let http = healthz_client();
    for round in 0..5 {
        let r = http
            .get(format!("{}/healthz", server.url))
            .send()
            .unwrap_or_else(|e| panic!("round {round}: /healthz did not answer: {e}"));
        assert!(r.status().is_success(), "round {round}: {}", r.status());
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(stalled);

    let log = server.log();
    assert!(!log.contains("Too many open files"), "{log}");
    // Afterwards the server works as usual.
    let results = server.work_dir().join("results");
    generate_results(&results, "after", 20);
    server
        .cli()
        .run(&[
            "upload",
            "--launch-name",
            "After the flood",
            results.to_str().unwrap(),
        ])
        .ok();
    let launches = server.api().launches(1);
    let launch = launches
        .iter()
        .find(|l| l["name"] == "After the flood")
        .expect("the launch");
    assert_eq!(
        server.api().results(launch["id"].as_i64().unwrap()).len(),
        20
    );
}

#[test]
fn a_stalled_request_header_is_dropped_after_the_header_timeout() {
    let server = TestServer::start_with(&["--header-timeout", "2s"]);
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut silent = TcpStream::connect(&addr).unwrap();
    let mut partial = TcpStream::connect(&addr).unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")
        .unwrap();
    for (name, s) in [("silent", &mut silent), ("partial header", &mut partial)] {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = Vec::new();
        // The server closes the socket (EOF or reset), not the 30 s timeout.
        match s.read_to_end(&mut buf) {
            Ok(_) => {}
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{name}: still open: {e}"
            ),
        }
    }
    // A live connection with requests keeps working.
    let r = healthz_client()
        .get(format!("{}/healthz", server.url))
        .send()
        .unwrap();
    assert!(r.status().is_success());
}

/// Sends the header of `POST path` announcing `announced` bytes of JSON,
/// then `first` of them.
fn body_begun(
    addr: &str,
    path: &str,
    token: Option<&str>,
    announced: usize,
    first: &[u8],
) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: api-token {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {announced}\r\n\r\n"
    )
    .unwrap();
    s.write_all(first).unwrap();
    s.flush().unwrap();
    s
}

/// Everything the server sends until it closes the connection (at most 30 s).
fn answer_until_closed(s: &mut TcpStream, name: &str) -> String {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();
    if let Err(e) = s.read_to_end(&mut buf) {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{name}: no answer and still open after 30 s: {e}; got {:?}",
            String::from_utf8_lossy(&buf)
        );
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn a_request_body_that_stalls_or_trickles_is_answered_408_and_closed() {
    let server = TestServer::start_with(&["--header-timeout", "2s"]);
    let addr = server.url.trim_start_matches("http://").to_string();

    // Anyone: a login whose body stops after 10 of 1,000 bytes.
    let mut stalled = body_begun(&addr, "/api/uaa/oauth/token", None, 1000, b"grant_type");
    // A token: a launch whose body comes a byte every 200 ms (5 bytes a
    // second, each pause well within the 2 s).
    let mut trickle = body_begun(&addr, "/api/launch", Some(TOKEN), 10_000, b"{");
    let writer = {
        let mut w = trickle.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..300 {
                std::thread::sleep(Duration::from_millis(200));
                if w.write_all(b" ").is_err() {
                    break;
                }
            }
        })
    };
    // A client that is slow but steady: 500 bytes a second, in pieces.
    let name = "steady, slowly sent";
    let json = format!(r#"{{"name": "{name}", "projectId": 1}}"#);
    let padded = format!("{json:<2000}");
    let mut steady = body_begun(&addr, "/api/launch", Some(TOKEN), padded.len(), b"");
    for piece in padded.as_bytes().chunks(250) {
        std::thread::sleep(Duration::from_millis(500));
        steady.write_all(piece).unwrap();
    }

    for (what, s) in [
        ("stalled login", &mut stalled),
        ("trickled launch", &mut trickle),
    ] {
        let answer = answer_until_closed(s, what);
        assert!(answer.starts_with("HTTP/1.1 408"), "{what}: {answer}");
        assert!(
            answer.contains(r#""code":"request_timeout""#),
            "{what}: {answer}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{what}: {answer}"
        );
    }
    writer.join().unwrap();
    steady
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = [0u8; 12];
    steady.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
    let launches = server.api().launches(1);
    assert!(
        launches.iter().any(|l| l["name"] == name),
        "the steady client's launch was created: {launches:?}"
    );
    // Nothing of the cut launch body was stored, and the server serves on.
    assert_eq!(launches.len(), 1, "{launches:?}");
}

/// A connection reads at most 32 KiB ahead of its handler
/// (`listen::READ_BUFFER`): a request head must fit in that (431 past it),
/// and one that does is served.
#[test]
fn a_request_head_over_the_read_buffer_is_refused_with_431() {
    let server = TestServer::start();
    let http = healthz_client();
    let with_padding = |kib: usize| {
        http.get(format!("{}/healthz", server.url))
            .header("X-Padding", "a".repeat(kib * 1024))
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(with_padding(40).as_u16(), 431);
    let fits = with_padding(24);
    assert!(fits.is_success(), "{fits}");
}

#[test]
fn a_second_server_on_the_same_sqlite_data_is_refused() {
    let first = TestServer::start();
    let data = first.work_dir().join("data");
    let mut second = Command::new(bin())
        .args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .args(["--init-token", TOKEN])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second server on {} kept running", data.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains("in use by another onelaunch server"), "{err}");
    assert!(err.contains(&data.display().to_string()), "{err}");
    // The first one is unharmed.
    assert_eq!(first.api().get_raw("/api/project").0, 200);
}

#[test]
fn failed_token_attempts_are_throttled_per_address() {
    let server =
        TestServer::start_with(&["--auth-max-failures", "3", "--auth-failure-window", "3s"]);
    let http = reqwest::blocking::Client::new();
    let get = |token: &str| {
        http.get(format!("{}/api/project", server.url))
            .header("Authorization", format!("Api-Token {token}"))
            .send()
            .unwrap()
    };
    // A good token is not counted and not slowed down.
    for _ in 0..5 {
        assert_eq!(get(TOKEN).status().as_u16(), 200);
    }
    for i in 0..3 {
        assert_eq!(get(&format!("wrong-{i}")).status().as_u16(), 401);
    }
    let blocked = Instant::now();
    for token in ["wrong-again", TOKEN] {
        let r = get(token);
        assert_eq!(r.status().as_u16(), 429, "{token}");
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=3).contains(&retry), "Retry-After {retry}");
        let body: serde_json::Value = r.json().unwrap();
        assert_eq!(body["code"], "too_many_requests");
    }
    // The token exchange of the allurectl flow is throttled the same way.
    let r = http
        .post(format!("{}/api/uaa/oauth/token", server.url))
        .form(&[("grant_type", "apitoken"), ("token", TOKEN)])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    // After the window the good token works again.
    let wait = Duration::from_millis(3_300).saturating_sub(blocked.elapsed());
    std::thread::sleep(wait);
    assert_eq!(get(TOKEN).status().as_u16(), 200);
}
