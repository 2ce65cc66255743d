//! The web UI: sessions, cookie flags, CSRF and project isolation over plain
//! HTTP, and the pages themselves in headless Chromium (tests/browser/ui.mjs)
//! against a real server filled by the real CLI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::support::*;

// ------------------------------------------------------------------ HTTP helpers

/// A cookie-keeping HTTP client that does not follow redirects.
struct Browser {
    url: String,
    http: reqwest::blocking::Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Browser {
    fn new(url: &str) -> Browser {
        Browser {
            url: url.to_string(),
            http: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn finish(&mut self, r: reqwest::blocking::Response) -> Page {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let (kv, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Page {
            status,
            location: headers
                .get("location")
                .map(|v| v.to_str().unwrap().to_string()),
            set_cookies,
            headers,
            body: r.text().unwrap_or_default(),
        }
    }

    fn get(&mut self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header("Cookie", self.cookie_header())
            .send()
            .expect("GET");
        self.finish(r)
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.url))
            .header("Cookie", self.cookie_header())
            .form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().expect("POST");
        self.finish(r)
    }

    /// A `multipart/form-data` POST of `(name, file name, content)` parts, in
    /// the order given.
    fn post_multipart(&mut self, path: &str, parts: &[(&str, Option<&str>, &str)]) -> Page {
        let boundary = "onelaunch-web-test";
        let mut body = String::new();
        for (name, file, content) in parts {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\""
            ));
            if let Some(f) = file {
                body.push_str(&format!("; filename=\"{f}\"\r\nContent-Type: text/plain"));
            }
            body.push_str(&format!("\r\n\r\n{content}\r\n"));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("Cookie", self.cookie_header())
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .expect("POST");
        self.finish(r)
    }

    /// Logs in through the form; returns the answer to the login POST.
    fn login(&mut self, token: &str, extra: &[(&str, &str)]) -> Page {
        let p = self.get("/login");
        assert_eq!(p.status, 200, "{}", p.body);
        let csrf = self.cookies.get("ol_login").cloned().expect("login cookie");
        self.post(
            "/login",
            &[("token", token), ("csrf", &csrf), ("next", "/launches")],
            extra,
        )
    }
}

/// The CSRF token a page puts into its forms.
fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let i = html.find(marker).expect("a form with a CSRF field") + marker.len();
    html[i..].split('"').next().unwrap().to_string()
}

fn session_cookie(p: &Page) -> String {
    p.set_cookies
        .iter()
        .find(|c| c.starts_with("ol_session="))
        .cloned()
        .unwrap_or_else(|| panic!("no session cookie in {:?}", p.set_cookies))
}

fn create_project_with_token(api: &Api, name: &str) -> (i64, String) {
    let p = api.post("/api/project", &json!({ "name": name }));
    let id = p["id"].as_i64().unwrap();
    let t = api.post(&format!("/api/project/{id}/token"), &json!({}));
    (id, t["token"].as_str().unwrap().to_string())
}

// ------------------------------------------------------------------ sessions, CSRF, isolation

#[test]
fn login_cookie_flags_csrf_and_project_isolation() {
    check_sessions_csrf_isolation(&TestServer::start());
}

#[test]
fn web_ui_on_postgres() {
    let Some(pg) = crate::pg::PgCluster::start() else {
        return;
    };
    let url = pg.database("ui");
    check_sessions_csrf_isolation(&TestServer::start_with(&["--database-url", &url]));
}

/// Sessions, cookie flags, CSRF and project isolation, on any backend.
fn check_sessions_csrf_isolation(server: &TestServer) {
    let api = server.api();
    // Project 1: a CI-led launch with a result that has a PNG attachment.
    let e2e = fixture("examples/pipelines/github-e2e/allure-results");
    server
        .cli()
        .github("5001", "e2e")
        .run(&[
            "upload",
            e2e.to_str().unwrap(),
            "--launch-name",
            "Main launch",
        ])
        .ok();
    let main_launch = api.launches(1)[0]["id"].as_i64().unwrap();
    let main_results = api.results(main_launch);
    let with_png = main_results
        .iter()
        .find(|r| r["attachmentCount"].as_i64().unwrap() > 0)
        .unwrap();
    let result_id = with_png["id"].as_i64().unwrap();
    let detail = api.get(&format!("/api/testresult/{result_id}"));
    let attachment_id = detail["attachments"][0]["id"].as_i64().unwrap();
    let job_run_id = api.job_runs(main_launch)[0]["id"].as_i64().unwrap();
    let job_id = api.job_runs(main_launch)[0]["job"]["id"].as_i64().unwrap();

    // Project 2 with its own token and launch.
    let (p2, p2_token) = create_project_with_token(&api, "Other team");
    let unit = fixture("examples/pipelines/github-unit/allure-results");
    Cli::new(&server.url, &p2_token)
        .env("ALLURE_PROJECT_ID", p2)
        .run(&[
            "upload",
            unit.to_str().unwrap(),
            "--launch-name",
            "Other team launch",
        ])
        .ok();
    let other_launch = api.launches(p2)[0]["id"].as_i64().unwrap();

    // Anonymous: every page sends to the login, and comes back afterwards.
    let mut anon = Browser::new(&server.url);
    let p = anon.get(&format!("/launch/{main_launch}"));
    assert_eq!(p.status, 303);
    assert_eq!(
        p.location.as_deref(),
        Some(format!("/login?next=%2Flaunch%2F{main_launch}").as_str())
    );
    for path in [
        "/launches",
        "/jobs",
        "/plans",
        &format!("/result/{result_id}"),
        &format!("/attachment/{attachment_id}"),
        &format!("/launch/{main_launch}/events"),
    ] {
        let p = anon.get(path);
        assert_eq!(p.status, 303, "{path} without a session");
    }
    // A state change without a session goes nowhere.
    let p = anon.post(&format!("/launch/{main_launch}/close"), &[], &[]);
    assert_eq!(p.status, 303);
    assert_eq!(
        api.get(&format!("/api/launch/{main_launch}"))["closed"],
        false
    );

    // The login form: protected by a double-submit cookie, wrong tokens refused.
    let p = anon.get("/login");
    let login_cookie = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with("ol_login="))
        .unwrap();
    assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Strict"));
    assert_eq!(
        anon.post("/login", &[("token", TOKEN)], &[]).status,
        403,
        "login without the form's CSRF token"
    );
    let csrf = anon.cookies["ol_login"].clone();
    let p = anon.post("/login", &[("token", "wrong"), ("csrf", &csrf)], &[]);
    assert_eq!(p.status, 401);
    assert!(p.body.contains("not known"));

    // A good login: a session cookie, HttpOnly and SameSite=Strict, not Secure over http.
    let mut admin = Browser::new(&server.url);
    let p = admin.login(TOKEN, &[]);
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/launches"));
    let cookie = session_cookie(&p);
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let session_value = admin.cookies["ol_session"].clone();
    assert!(session_value.len() >= 32);

    // Behind an https proxy the cookie is Secure.
    let mut proxied = Browser::new(&server.url);
    let p = proxied.login(TOKEN, &[("X-Forwarded-Proto", "https")]);
    assert!(
        session_cookie(&p).contains("; Secure"),
        "{:?}",
        p.set_cookies
    );

    // Pages answer, with the security headers.
    let p = admin.get("/launches");
    assert_eq!(p.status, 200);
    assert!(p.body.contains("Main launch"));
    assert!(
        !p.body.contains("Other team launch"),
        "project 1 is shown by default"
    );
    let csp = p.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(p.headers["x-content-type-options"], "nosniff");
    assert_eq!(p.headers["cache-control"], "no-store");
    assert_eq!(admin.get(&format!("/launches?project={p2}")).status, 200);
    for path in [
        format!("/launch/{main_launch}"),
        format!("/jobrun/{job_run_id}"),
        format!("/result/{result_id}"),
        format!("/jobs/{job_id}"),
        format!("/launch/{main_launch}/live"),
        "/launches".to_string(),
        "/jobs".to_string(),
        "/plans".to_string(),
        "/plans/new".to_string(),
    ] {
        let p = admin.get(&path);
        assert_eq!(p.status, 200, "{path}: {}", p.body);
    }
    let png = admin.get(&format!("/attachment/{attachment_id}"));
    assert_eq!(png.status, 200);
    assert_eq!(png.headers["content-type"], "image/png");
    assert!(png.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));

    // The session survives a restart (it lives in the database, hashed).
    let data = server.work_dir().join("data");
    for f in ["onelaunch.db", "onelaunch.db-wal"] {
        if let Ok(bytes) = std::fs::read(data.join(f)) {
            let hay = String::from_utf8_lossy(&bytes);
            assert!(
                !hay.contains(&session_value),
                "the session id is stored in plain text in {f}"
            );
        }
    }

    // CSRF: a state change needs the session's token, in the form or a header.
    let page = admin.get(&format!("/launch/{main_launch}")).body;
    let token = csrf_of(&page);
    let close = format!("/launch/{main_launch}/close");
    assert_eq!(admin.post(&close, &[], &[]).status, 403, "no token");
    assert_eq!(
        admin
            .post(&close, &[("csrf", "0123456789abcdef")], &[])
            .status,
        403,
        "wrong token"
    );
    let mut other_session = Browser::new(&server.url);
    other_session.login(TOKEN, &[]);
    let foreign = csrf_of(&other_session.get("/launches").body);
    assert_ne!(foreign, token);
    assert_eq!(
        admin.post(&close, &[("csrf", &foreign)], &[]).status,
        403,
        "another session's token"
    );
    assert_eq!(
        api.get(&format!("/api/launch/{main_launch}"))["closed"],
        false
    );
    let p = admin.post(&close, &[("csrf", &token)], &[]);
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(
        api.get(&format!("/api/launch/{main_launch}"))["closed"],
        true
    );
    let p = admin.post(
        &format!("/launch/{main_launch}/reopen"),
        &[],
        &[("X-CSRF-Token", &token)],
    );
    assert_eq!(p.status, 303);
    assert_eq!(
        api.get(&format!("/api/launch/{main_launch}"))["closed"],
        false
    );

    // A project token sees only its project: everything else is "not found".
    let mut team = Browser::new(&server.url);
    assert_eq!(team.login(&p2_token, &[]).status, 303);
    let p = team.get("/launches");
    assert_eq!(p.status, 200);
    assert!(p.body.contains("Other team launch"));
    assert!(!p.body.contains("Main launch"));
    assert_eq!(team.get(&format!("/launch/{other_launch}")).status, 200);
    for path in [
        "/launches?project=1".to_string(),
        "/jobs?project=1".to_string(),
        "/plans?project=1".to_string(),
        format!("/launch/{main_launch}"),
        format!("/launch/{main_launch}/events"),
        format!("/launch/{main_launch}/live"),
        format!("/jobrun/{job_run_id}"),
        format!("/result/{result_id}"),
        format!("/attachment/{attachment_id}"),
        format!("/jobs/{job_id}"),
    ] {
        let p = team.get(&path);
        assert_eq!(p.status, 404, "{path} from another project");
        assert!(!p.body.contains("Main launch"), "{path} leaked a name");
    }
    let team_csrf = csrf_of(&team.get("/launches").body);
    assert_eq!(
        team.post(&close, &[("csrf", &team_csrf)], &[]).status,
        404,
        "closing another project's launch"
    );
    let rerun = format!("/launch/{main_launch}/rerun");
    assert_eq!(
        admin.post(&rerun, &[("failed", "1")], &[]).status,
        403,
        "rerun without a CSRF token"
    );
    assert_eq!(
        team.post(&rerun, &[("csrf", &team_csrf), ("failed", "1")], &[])
            .status,
        404,
        "rerunning another project's launch"
    );
    assert_eq!(
        api.get(&format!("/api/launch/{main_launch}"))["closed"],
        false
    );

    // Logout ends the session on the server, not just in the browser.
    let stolen = admin.cookies.clone();
    let p = admin.post("/logout", &[("csrf", &token)], &[]);
    assert_eq!(p.status, 303);
    assert!(!admin.cookies.contains_key("ol_session"));
    let mut replay = Browser::new(&server.url);
    replay.cookies = stolen;
    assert_eq!(
        replay.get("/launches").status,
        303,
        "a logged-out session is dead"
    );
}

#[test]
fn sessions_live_in_the_database_and_survive_a_restart() {
    let mut server = TestServer::start();
    let mut b = Browser::new(&server.url);
    assert_eq!(b.login(TOKEN, &[]).status, 303);
    assert_eq!(b.get("/launches").status, 200);
    let data = server.work_dir().join("data");
    server.kill();
    // Another server process on the same database (a replica, or a restart).
    let again = TestServer::start_in(Some(&data), &[]);
    b.url = again.url.clone();
    let p = b.get("/launches");
    assert_eq!(p.status, 200, "the session is known to the other process");
    drop(server);
}

#[test]
fn a_server_with_open_live_pages_still_stops_at_once() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .args(["--init-token", TOKEN])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on ") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "server ended");
    }
    std::thread::spawn(move || for _ in out.lines() {});
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    let launch = Cli::new(&url, TOKEN)
        .run(&[
            "launch",
            "create",
            "--launch-name",
            "Live",
            "--format",
            "ID",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let mut b = Browser::new(&url);
    assert_eq!(b.login(TOKEN, &[]).status, 303);
    // A live page: the stream stays open (its first event arrives at once).
    let mut stream = b
        .http
        .get(format!("{url}/launch/{launch}/events"))
        .header("Cookie", b.cookie_header())
        .send()
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let mut first = [0u8; 13];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"event: update");
    let started = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the server kept running for an open live page");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stream);
}

// ------------------------------------------------------------------ the browser

/// Why the browser tests cannot run here, if they cannot.
fn browser_missing() -> Option<String> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("/usr/bin/chromium is missing".into());
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is missing".into());
    }
    if !repo()
        .join("tests/browser/node_modules/playwright-core")
        .exists()
    {
        return Some("tests/browser/node_modules is missing".into());
    }
    None
}

/// A PNG (RGB, no compression) of a made-up checkout page with an error banner.
fn png(width: u32, height: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for b in data {
            c ^= *b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0);
        for x in 0..width {
            let px: [u8; 3] = if y < 28 {
                [36, 86, 214] // header
            } else if (60..100).contains(&y) && (20..width - 20).contains(&x) {
                [209, 52, 52] // error banner
            } else if (120..150).contains(&y) && (20..200).contains(&x) {
                [221, 225, 231] // card field
            } else if (170..196).contains(&y) && (20..120).contains(&x) {
                [31, 138, 76] // pay button
            } else {
                [246, 247, 249]
            };
            raw.extend(px);
        }
    }
    // zlib with stored (uncompressed) deflate blocks.
    let mut z = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, c) in chunks.iter().enumerate() {
        z.push(u8::from(i + 1 == chunks.len()));
        z.extend((c.len() as u16).to_le_bytes());
        z.extend((!(c.len() as u16)).to_le_bytes());
        z.extend(*c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for x in &raw {
        a = (a + *x as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    let mut out = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Allure results of a checkout suite: a failed test with nested steps, a PNG
/// and a text attachment, a fixture, and an earlier attempt; plus passes.
fn checkout_results(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let now = CHECKOUT_START;
    std::fs::write(dir.join("ui-fail-screenshot.png"), png(360, 210)).unwrap();
    std::fs::write(
        dir.join("ui-pay-log.txt"),
        "POST /payments 402\ngateway answered 402: card declined (insufficient funds)\n",
    )
    .unwrap();
    let failed = |uuid: &str, start: i64, status: &str| {
        json!({
            "uuid": uuid, "historyId": "ui-h-pay", "name": "card payment is declined",
            "fullName": "checkout.spec.ts#card payment is declined", "status": status,
            "start": start, "stop": start + 4_250,
            "statusDetails": {
                "message": "AssertionError: expected order status 'paid', got 'declined'",
                "trace": "AssertionError: expected order status 'paid', got 'declined'\n    at checkout.spec.ts:42:7\n    at processTicksAndRejections (node:internal/process/task_queues:95:5)"
            },
            "labels": [
                {"name": "feature", "value": "Checkout"}, {"name": "severity", "value": "critical"},
                {"name": "suite", "value": "checkout.spec.ts"}, {"name": "ALLURE_ID", "value": "4101"}
            ],
            "parameters": [{"name": "card", "value": "visa-4000"}, {"name": "browser", "value": "chromium"}],
            "links": [{"name": "SHOP-42", "url": "https://issues.example.com/browse/SHOP-42", "type": "issue"}],
            "steps": [
                {"name": "open checkout", "status": "passed", "start": start, "stop": start + 900,
                 "steps": [{"name": "add item to cart", "status": "passed", "start": start + 10, "stop": start + 400}]},
                {"name": "pay with card", "status": "failed", "start": start + 950, "stop": start + 4_200,
                 "statusDetails": {"message": "payment declined"},
                 "attachments": [{"name": "gateway log", "source": "ui-pay-log.txt", "type": "text/plain"}]}
            ],
            "attachments": [{"name": "screenshot at failure", "source": "ui-fail-screenshot.png", "type": "image/png"}]
        })
    };
    let results = [
        failed("ui-fail-0", now - 60_000, "broken"),
        failed("ui-fail-1", now, "failed"),
        json!({"uuid": "ui-pass-1", "historyId": "ui-h-address", "name": "saved address is prefilled",
               "fullName": "checkout.spec.ts#saved address is prefilled", "status": "passed",
               "start": now, "stop": now + 1_200, "labels": [{"name": "feature", "value": "Checkout"}]}),
        json!({"uuid": "ui-pass-2", "historyId": "ui-h-coupon", "name": "coupon reduces the total",
               "fullName": "checkout.spec.ts#coupon reduces the total", "status": "passed",
               "start": now, "stop": now + 800, "labels": [{"name": "feature", "value": "Checkout"}]}),
    ];
    for r in &results {
        std::fs::write(
            dir.join(format!("{}-result.json", r["uuid"].as_str().unwrap())),
            r.to_string(),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("ui-container-1-container.json"),
        json!({"uuid": "ui-container-1", "children": ["ui-fail-1"],
               "befores": [{"name": "seed test data", "status": "passed", "start": now - 500, "stop": now - 20}]})
        .to_string(),
    )
    .unwrap();
}

/// When the checkout suite ran (the fixtures of the other pipelines ran then too).
const CHECKOUT_START: i64 = 1_736_154_300_000;

/// `n` passing or failing tests of a shard that reports while the page is open.
fn live_results(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let uuid = format!("live-{i}");
        let start = CHECKOUT_START + 300_000 + i as i64 * 1_500;
        let v = json!({
            "uuid": uuid, "historyId": format!("h-{uuid}"), "name": format!("search result {i} is shown"),
            "fullName": format!("search.spec.ts#search result {i} is shown"),
            "status": if i % 9 == 4 { "failed" } else { "passed" },
            "start": start, "stop": start + 1_200,
            "labels": [{"name": "feature", "value": "Search"}],
        });
        std::fs::write(dir.join(format!("{uuid}-result.json")), v.to_string()).unwrap();
    }
}

fn screenshots_dir() -> PathBuf {
    repo().join("target/screenshots")
}

#[test]
fn web_ui_in_headless_chromium() {
    if browser_ready() {
        browser_scenario(&[], &screenshots_dir(), true);
    }
}

#[test]
fn web_ui_in_headless_chromium_on_postgres() {
    if !browser_ready() {
        return;
    }
    let Some(pg) = crate::pg::PgCluster::start() else {
        return;
    };
    let url = pg.database("ui_browser");
    browser_scenario(
        &["--database-url", &url],
        &screenshots_dir().join("postgres"),
        false,
    );
}

/// False (after saying SKIPPED) when Chromium or the node packages are
/// missing; with ONELAUNCH_REQUIRE_RUNNERS=1 that is a failure instead.
pub(crate) fn browser_ready() -> bool {
    match browser_missing() {
        None => true,
        Some(why) if std::env::var("ONELAUNCH_REQUIRE_RUNNERS").as_deref() == Ok("1") => {
            panic!("{why} (ONELAUNCH_REQUIRE_RUNNERS=1): run scripts/tools/browser.sh")
        }
        Some(why) => {
            eprintln!("SKIPPED: {why}; run scripts/tools/browser.sh");
            false
        }
    }
}

/// Prepares a CI-led scenario with the real CLI and runs tests/browser/ui.mjs
/// against it, screenshots into `shots`; `docs`: the run whose screenshots
/// `ONELAUNCH_UPDATE_SCREENSHOTS=1` copies into docs/screenshots.
fn browser_scenario(server_args: &[&str], shots: &Path, docs: bool) {
    let server = TestServer::start_with(server_args);
    let api = server.api();
    let work = server.work_dir().to_path_buf();

    // An older, closed launch: the GitHub workflow and the GitLab pipeline
    // proved themselves there (so the server may run them from a plan).
    let pytest = fixture("tests/fixtures/allure-pytest");
    let junit = fixture("examples/pipelines/gitlab-api/results");
    let gh_old = server.cli().github("9000", "tests");
    gh_old
        .run(&[
            "upload",
            pytest.to_str().unwrap(),
            "--launch-name",
            "Nightly 1.1",
            "--launch-tags",
            "nightly",
        ])
        .ok();
    let old = parse_env(&gh_old.run(&["job-run", "env"]).ok().stdout);
    server
        .cli()
        .gitlab("776")
        .env("ALLURE_LAUNCH_ID", &old["ALLURE_LAUNCH_ID"])
        .run(&["upload", junit.to_str().unwrap()])
        .ok();
    server
        .cli()
        .run(&["launch", "close", &old["ALLURE_LAUNCH_ID"]])
        .ok();

    // The shared launch of this release: a GitHub workflow (start job +
    // checkout shard), a GitLab pipeline, and a Jenkins job that starts and
    // never reports.
    let gh = server.cli().github("9001", "start");
    gh.run(&[
        "job-run",
        "start",
        "--launch-name",
        "Release 1.2 validation",
        "--launch-tags",
        "release, rc",
    ])
    .ok();
    let ids = parse_env(&gh.run(&["job-run", "env"]).ok().stdout);
    let launch_id = ids["ALLURE_LAUNCH_ID"].clone();
    let job_run_id = ids["ALLURE_JOB_RUN_ID"].clone();
    let checkout = work.join("checkout-results");
    checkout_results(&checkout);
    server
        .cli()
        .github("9001", "checkout")
        .env("ALLURE_JOB_RUN_ID", &job_run_id)
        .run(&["upload", checkout.to_str().unwrap()])
        .ok();
    server
        .cli()
        .gitlab("777")
        .env("ALLURE_LAUNCH_ID", &launch_id)
        .run(&["upload", junit.to_str().unwrap()])
        .ok();
    server
        .cli()
        .env("ALLURE_LAUNCH_ID", &launch_id)
        .run(&[
            "job-run",
            "start",
            "--ci-type",
            "jenkins",
            "--job-uid",
            "nightly-e2e",
            "--job-name",
            "jenkins nightly-e2e",
            "--job-run-uid",
            "42",
            "--job-run-name",
            "#42",
        ])
        .ok();

    // The GitLab job may run tests (the GitHub one is configured in the browser).
    let gitlab_job = server
        .cli()
        .run(&[
            "job",
            "configure",
            "--uid",
            "4242",
            "--can-run-tests",
            "true",
            "--integration",
            "command",
            "--command",
            "true",
        ])
        .ok();
    assert!(
        gitlab_job.stdout.contains("api-tests"),
        "{}",
        gitlab_job.stdout
    );
    let runs = api.job_runs(launch_id.parse().unwrap());
    let github_job_id = runs
        .iter()
        .find(|r| r["id"].as_i64().unwrap().to_string() == job_run_id)
        .unwrap()["job"]["id"]
        .as_i64()
        .unwrap();

    // The upload the browser watches arrive.
    let live = work.join("live-results");
    let live_count = 40;
    live_results(&live, live_count);
    let cli = server
        .cli()
        .github("9001", "live-shard")
        .env("ALLURE_JOB_RUN_ID", &job_run_id);
    let live_upload = json!({
        "cmd": [bin().to_str().unwrap(), "upload", live.to_str().unwrap()],
        "env": cli.env,
    });

    // Screenshots of an earlier run go (subdirectories of other runs stay).
    if let Ok(entries) = std::fs::read_dir(shots) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "png") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let out = Command::new("node")
        .arg("ui.mjs")
        .current_dir(repo().join("tests/browser"))
        .env("OL_URL", &server.url)
        .env("OL_TOKEN", TOKEN)
        .env("OL_LAUNCH_ID", &launch_id)
        .env("OL_LAUNCH_NAME", "Release 1.2 validation")
        .env("OL_OTHER_LAUNCH", "Nightly 1.1")
        .env("OL_GITHUB_JOB_RUN", &job_run_id)
        .env("OL_MISSING_JOB", "jenkins nightly-e2e")
        .env("OL_FAILED_RESULT", "card payment is declined")
        .env("OL_GITHUB_JOB_ID", github_job_id.to_string())
        .env("OL_GITLAB_JOB", "api-tests")
        .env(
            "OL_PLAN_CASES",
            json!([
                "card payment is declined",
                "coupon reduces the total",
                "test_create_order"
            ])
            .to_string(),
        )
        .env("OL_OVERRIDE_CASE", "coupon reduces the total")
        .env("OL_MANUAL_CASE", "test_create_order")
        .env("OL_LIVE_UPLOAD", live_upload.to_string())
        .env("OL_LIVE_COUNT", live_count.to_string())
        .env("OL_SCREENSHOTS", shots)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "browser tests failed (screenshots in {}):\n{stdout}\n{stderr}\n--- server log ---\n{}",
        shots.display(),
        server.log()
    );
    assert!(
        !server.log().contains(TOKEN),
        "token leaked into the server log"
    );
    assert!(
        !server.log().contains("ui-secret-credential"),
        "a job credential leaked into the server log"
    );

    // `ONELAUNCH_UPDATE_SCREENSHOTS=1` refreshes the README's pictures.
    if docs && std::env::var("ONELAUNCH_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = repo().join("docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        for e in std::fs::read_dir(shots).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                continue;
            }
            std::fs::copy(&p, docs.join(p.file_name().unwrap())).unwrap();
        }
    }
}

// ------------------------------------------------------------------ quality gate

/// Issue 14: the quality gate in the web UI. With the project's rule
/// `maxFailures ≤ 0`, a launch with a failed test shows a "Quality gate"
/// section judged now while it is open (labelled as such, no list badge);
/// once closed, the list shows "gate failed" and the page the stored verdict
/// with the rule measured against expected and the failed test, and the
/// Allure TestOps plugin's failed rules next to it. A launch whose gate holds
/// shows "gate passed"; a launch closed before the project had rules shows
/// neither, and its page says that no verdict was stored.
#[test]
fn launch_list_and_page_show_the_quality_gate() {
    let server = TestServer::start();
    let api = server.api();
    let cli = server.cli();
    let dir = tempfile::tempdir().unwrap();
    let upload = |name: &str, run: &str, fail: bool| -> i64 {
        let reports = dir.path().join(name);
        std::fs::create_dir_all(&reports).unwrap();
        std::fs::write(reports.join("TEST-api.xml"), orders_junit(fail)).unwrap();
        server
            .cli()
            .github(run, "api")
            .run(&["upload", reports.to_str().unwrap(), "--launch-name", name])
            .ok();
        api.launches(1).iter().find(|l| l["name"] == name).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let ungated = upload("Before any rule", "7000", true);
    cli.run(&["launch", "close", &ungated.to_string()]).ok();
    cli.run(&["project", "gate", "1", "--max-failures", "0"])
        .ok();
    let failing = upload("Failing release", "7001", true);
    let holding = upload("Passing release", "7002", false);

    let mut b = Browser::new(&server.url);
    assert_eq!(b.login(TOKEN, &[]).status, 303);

    // Open: judged now, labelled so; no badge in the list yet.
    let page = b.get(&format!("/launch/{failing}"));
    assert_eq!(page.status, 200);
    let body = page.body;
    assert!(body.contains("id=\"gate\""), "{body}");
    assert!(body.contains("Quality gate"), "{body}");
    assert!(body.contains("judged now"), "{body}");
    assert!(body.contains("data-rule=\"maxFailures\""), "{body}");
    assert!(body.contains("at most 0"), "{body}");
    let list = b.get("/launches?project=1").body;
    assert!(
        !list.contains("gate failed") && !list.contains("gate passed"),
        "{list}"
    );

    // The Allure plugin's own failed rule, then the close.
    api.post(
        "/api/launch/quality-gate/bulk",
        &json!({"launchId": failing, "items": [
            {"name": "minTestsCount", "message": "Min tests count: 2 < 10"}]}),
    );
    for id in [failing, holding] {
        cli.run(&["launch", "close", &id.to_string()]).ok();
    }
    assert_eq!(
        api.get(&format!("/api/launch/{failing}"))["gatePassed"],
        false
    );

    let list = b.get("/launches?project=1").body;
    let row = |name: &str| -> String {
        let at = list
            .find(name)
            .unwrap_or_else(|| panic!("{name} in {list}"));
        let end = list[at..].find("</tr>").unwrap() + at;
        list[at..end].to_string()
    };
    assert!(row("Failing release").contains("gate failed"), "{list}");
    assert!(row("Passing release").contains("gate passed"), "{list}");
    let before = row("Before any rule");
    assert!(
        !before.contains("gate failed") && !before.contains("gate passed"),
        "{before}"
    );

    let body = b.get(&format!("/launch/{failing}")).body;
    assert!(body.contains("data-gate=\"failed\""), "{body}");
    assert!(body.contains("Stored when the launch closed"), "{body}");
    assert!(!body.contains("judged now"), "{body}");
    let at = body
        .find("data-rule=\"maxFailures\"")
        .expect("the rule row");
    let rule_row = &body[at..at + body[at..].find("</tr>").unwrap()];
    for text in ["at most 0", "1 (failed 1, broken 0)", "case_0", "fail"] {
        assert!(rule_row.contains(text), "{text} in {rule_row}");
    }
    assert!(body.contains("Allure TestOps plugin"), "{body}");
    assert!(body.contains("minTestsCount"), "{body}");
    assert!(body.contains("Min tests count: 2 &lt; 10"), "{body}");

    let body = b.get(&format!("/launch/{holding}")).body;
    assert!(body.contains("data-gate=\"passed\""), "{body}");
    // Closed before the project had rules: no stored verdict, so the page
    // says the current rules are judged now.
    let body = b.get(&format!("/launch/{ungated}")).body;
    assert!(body.contains("No verdict was stored"), "{body}");
    assert!(!body.contains("Stored when the launch closed"), "{body}");
}

/// A form with files (the manual result form) carries its CSRF token as its
/// first part: the guard reads that part only and lets the files stream on.
#[test]
fn a_multipart_form_is_accepted_only_with_its_csrf_token_first() {
    let server = TestServer::start();
    let api = server.api();
    let launch = api.post("/api/launch", &json!({"name": "by hand", "projectId": 1}))["id"]
        .as_i64()
        .unwrap();
    let mut admin = Browser::new(&server.url);
    assert_eq!(admin.login(TOKEN, &[]).status, 303);
    let page = admin.get(&format!("/launch/{launch}"));
    assert!(page.body.contains("multipart/form-data"), "{}", page.body);
    let token = csrf_of(&page.body);
    let path = format!("/launch/{launch}/manual");
    let fields = |csrf: &str| {
        vec![
            ("csrf", None, csrf.to_string()),
            ("other", None, "checkout by hand".to_string()),
            ("status", None, "passed".to_string()),
            ("file", Some("note.txt"), "what the tester saw".to_string()),
        ]
    };
    let send = |b: &mut Browser, parts: &[(&str, Option<&str>, String)]| {
        let parts: Vec<(&str, Option<&str>, &str)> =
            parts.iter().map(|(n, f, c)| (*n, *f, c.as_str())).collect();
        b.post_multipart(&path, &parts)
    };
    let recorded = || {
        api.get(&format!("/api/launch/{launch}/manual"))["results"]
            .as_array()
            .map_or(0, |r| r.len())
    };

    // A wrong token, or the token after other parts: refused, nothing stored.
    assert_eq!(send(&mut admin, &fields("0123456789abcdef")).status, 403);
    let mut late = fields(&token);
    late.rotate_left(1);
    assert_eq!(send(&mut admin, &late).status, 403);
    // No session at all: the login page.
    let mut anon = Browser::new(&server.url);
    let p = send(&mut anon, &fields(&token));
    assert_eq!(p.status, 303);
    assert!(p.location.unwrap().starts_with("/login"));
    assert_eq!(recorded(), 0);

    // The right token first: recorded, with its file as an attachment.
    let p = send(&mut admin, &fields(&token));
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(recorded(), 1);
    let result = api.get(&format!("/api/launch/{launch}/manual"))["results"][0]["id"]
        .as_i64()
        .unwrap();
    let detail = api.get(&format!("/api/testresult/{result}"));
    assert_eq!(detail["attachments"][0]["fileName"], "note.txt", "{detail}");
    assert_eq!(detail["attachments"][0]["stored"], true, "{detail}");
}

/// The API page lists every operation of the served description, under its
/// tag, and the navigation leads to it.
#[test]
fn the_api_page_lists_every_described_operation_by_tag() {
    let server = TestServer::start();
    let doc: Value = reqwest::blocking::get(format!("{}/api/openapi.json", server.url))
        .unwrap()
        .json()
        .unwrap();
    let mut b = Browser::new(&server.url);
    assert_eq!(b.get("/api-docs").status, 303, "needs a login");
    assert_eq!(b.login(TOKEN, &[]).status, 303);
    let launches = b.get("/launches").body;
    assert!(
        launches.contains("href=\"/api-docs?project=1\""),
        "{launches}"
    );
    let page = b.get("/api-docs?project=1");
    assert_eq!(page.status, 200);
    let body = page.body;
    assert!(body.contains("aria-current=\"page\">API<"), "{body}");
    assert!(body.contains("href=\"/api/openapi.json\""), "{body}");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let tag = op["tags"][0].as_str().unwrap();
            let section = format!("<section id=\"tag-{}\">", tag.replace(' ', "-"));
            let start = body
                .find(&section)
                .unwrap_or_else(|| panic!("no section for tag {tag}"));
            let end = body[start..].find("</section>").unwrap() + start;
            let row = format!(
                "{}</code></td><td><code>/api{}</code></td><td>{}",
                method.to_uppercase(),
                path,
                op["summary"]
                    .as_str()
                    .unwrap()
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&quot;")
            );
            assert!(
                body[start..end].contains(&row),
                "{method} {path} not under {tag}: {row}"
            );
        }
    }
    assert!(body.contains(&format!("{operations} operations")), "{body}");
    assert!(body.contains("POST /api/uaa/oauth/token"), "{body}");
}
