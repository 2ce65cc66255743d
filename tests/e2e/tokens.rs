//! Token lifecycle on the real server and CLI: named tokens with an expiry,
//! their last use, revocation (the next request answers 401), expiry, the
//! init token created only once, and the minimum length of `--init-token`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::support::*;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `GET /api/project` with a token: the status.
pub fn status_with(url: &str, token: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(format!("{url}/api/project"))
        .header("Authorization", format!("api-token {token}"))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// An access token from the OAuth exchange of an API token.
pub fn exchange(url: &str, token: &str) -> String {
    let r = reqwest::blocking::Client::new()
        .post(format!("{url}/api/uaa/oauth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=apitoken&scope=openid&token={token}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json::<Value>().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `GET /api/project` with a Bearer access token: the status.
pub fn bearer_status(url: &str, access: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(format!("{url}/api/project"))
        .header("Authorization", format!("Bearer {access}"))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn token_row(cli: &Cli, name: &str) -> Value {
    let out = cli.run(&["token", "list", "-o", "json"]).ok().stdout;
    let all: Value = serde_json::from_str(&out).expect("token list -o json");
    all.as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} not listed: {out}"))
}

#[test]
fn a_named_token_with_an_expiry_is_used_listed_and_revoked_with_the_cli() {
    let server = TestServer::start();
    let admin = server.cli();
    let created = admin
        .run(&[
            "token",
            "create",
            "--name",
            "nightly",
            "--project",
            "1",
            "--expires-in-days",
            "30",
        ])
        .ok();
    let secret = created.stdout.trim().to_string();
    assert!(secret.starts_with("olp_"), "{}", created.all());
    assert!(
        created.stderr.contains("Created token [") && created.stderr.contains("shown once"),
        "{}",
        created.stderr
    );
    // A scope must be chosen: admin or a project.
    admin
        .run(&["token", "create", "--name", "unscoped"])
        .code(2);

    let row = token_row(&admin, "nightly");
    assert_eq!(row["status"], "active");
    assert_eq!(row["projectId"], 1);
    assert!(row["expiresDate"].as_i64().unwrap() > now_ms() + 29 * 86_400_000);
    assert!(row["lastUsedDate"].is_null(), "{row}");

    // Used by the CLI: the last use shows.
    let user = Cli::new(&server.url, &secret);
    user.run(&["launch", "list"]).ok();
    let row = token_row(&admin, "nightly");
    assert!(row["lastUsedDate"].as_i64().is_some(), "{row}");
    let text = admin.run(&["token", "list"]).ok().stdout;
    assert!(
        text.contains("nightly") && text.contains("LAST USED"),
        "{text}"
    );
    assert!(!text.contains(&secret));
    // A project token cannot manage tokens (exit 5: not authorised).
    user.run(&["token", "list"]).code(5);

    let id = row["id"].as_i64().unwrap().to_string();
    let revoked = admin.run(&["token", "revoke", &id]).ok();
    assert!(
        revoked
            .stdout
            .contains(&format!("Revoked token [{id}] nightly")),
        "{}",
        revoked.all()
    );
    // The next request: 401, the CLI exits 5.
    assert_eq!(status_with(&server.url, &secret), 401);
    user.run(&["launch", "list"]).code(5);
    assert_eq!(token_row(&admin, "nightly")["status"], "revoked");
    // Idempotent; an unknown id is not found (exit 7).
    admin.run(&["token", "revoke", &id]).ok();
    admin.run(&["token", "revoke", "99999"]).code(7);
    assert!(
        !server.log().contains(&secret),
        "the secret reached the log"
    );
}

#[test]
fn an_expired_token_is_refused() {
    let server = TestServer::start();
    let api = server.api();
    let expires_at = now_ms() + 6_000;
    let created = api.post(
        "/api/token",
        &json!({"name": "brief", "projectId": 1, "expiresAt": expires_at}),
    );
    let secret = created["token"].as_str().unwrap().to_string();
    assert_eq!(status_with(&server.url, &secret), 200);
    // Bounded wait for the expiry; the first 401 comes only after it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = status_with(&server.url, &secret);
        if status == 401 {
            assert!(now_ms() >= expires_at, "refused before it expired");
            break;
        }
        assert_eq!(status, 200);
        assert!(Instant::now() < deadline, "the token never expired");
        std::thread::sleep(Duration::from_millis(250));
    }
    let list = api.get("/api/token");
    let row = list["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "brief")
        .unwrap()
        .clone();
    assert_eq!(row["status"], "expired");
}

#[test]
fn a_revoked_init_token_stays_revoked_after_a_restart_with_the_same_init_token() {
    let data = tempfile::tempdir().unwrap();
    let mut first = TestServer::start_in(Some(data.path()), &[]);
    let ops = first
        .cli()
        .run(&["token", "create", "--name", "ops", "--admin"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let ops_cli = Cli::new(&first.url, &ops);
    // The last live admin token cannot be revoked; with a second one it can.
    let init_id = token_row(&ops_cli, "init")["id"].as_i64().unwrap();
    ops_cli.run(&["token", "revoke", &init_id.to_string()]).ok();
    assert_eq!(status_with(&first.url, TOKEN), 401);
    first.kill();

    // Same data, same --init-token: still revoked.
    let second = TestServer::start_in(Some(data.path()), &[]);
    assert_eq!(status_with(&second.url, TOKEN), 401);
    assert_eq!(status_with(&second.url, &ops), 200);
    assert!(
        second.log().contains("--init-token is not used"),
        "{}",
        second.log()
    );
    assert!(!second.log().contains(TOKEN));

    // Recovery on the server host: a new admin token straight into the database.
    let out = Command::new(bin())
        .args(["server", "admin-token", "--name", "recovered", "--data"])
        .arg(data.path())
        .env_remove("ONELAUNCH_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let recovered = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(recovered.starts_with("ol_"), "{recovered}");
    assert_eq!(status_with(&second.url, &recovered), 200);
    let recovered_cli = Cli::new(&second.url, &recovered);
    let row = token_row(&recovered_cli, "recovered");
    assert!(row["projectId"].is_null());
    // A token may revoke itself while another admin token lives…
    recovered_cli
        .run(&["token", "revoke", &row["id"].to_string()])
        .ok();
    assert_eq!(status_with(&second.url, &recovered), 401);
    // …but the last live admin token cannot be revoked.
    let ops_cli = Cli::new(&second.url, &ops);
    let ops_id = token_row(&ops_cli, "ops")["id"].to_string();
    let refused = ops_cli.run(&["token", "revoke", &ops_id]).code(1);
    assert!(
        refused.stderr.contains("last live admin token"),
        "{}",
        refused.stderr
    );
    assert_eq!(status_with(&second.url, &ops), 200);
}

#[test]
fn a_short_init_token_stops_the_server_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .args(["--init-token", "tiny-secret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a server that starts anyway is killed and the test fails.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status = status.expect("the server started with a 11-character --init-token");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--init-token") && stderr.contains("at least 20 characters"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("tiny-secret"),
        "the token is shown: {stderr}"
    );
}
