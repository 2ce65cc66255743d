//! The server's outbound TLS: a CI trigger to a provider behind HTTPS signed
//! by a private CA fails with a certificate message until the server trusts
//! that CA (`onelaunch server --ca-cert FILE`, `ONELAUNCH_CA_CERT`), the same
//! way the CLI trusts a server's CA.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::pki::{make_pki, TlsFront};
use crate::support::*;

/// Stands in for the GitHub API on plain HTTP (behind a [`TlsFront`]):
/// answers 204 to every request and records its request line.
fn provider() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut length = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            record.lock().unwrap().push(first.trim().to_string());
            let mut stream = stream;
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

/// Learns a GitHub job and its cases, points the job at `provider_url` (an
/// admin sets it, so the address is approved) and runs one case: the job run
/// of the new launch.
fn run_one_case(server: &TestServer, provider_url: &str) -> Value {
    let api = server.api();
    let cli = server.cli();
    cli.clone()
        .github("7001", "tests")
        .run(&[
            "upload",
            "--launch-name",
            "Learn",
            fixture("tests/fixtures/allure-pytest").to_str().unwrap(),
        ])
        .ok();
    let learned = api.launches(1)[0]["id"].as_i64().unwrap();
    cli.run(&["launch", "close", &learned.to_string()]).ok();
    let jobs = api.get("/api/project/1/job");
    let job = jobs.as_array().unwrap()[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    cli.clone()
        .env("GH_TOKEN", "ghp_tlsTestSecret")
        .run(&[
            "job",
            "configure",
            &job,
            "--can-run-tests",
            "true",
            "--integration",
            "github",
            "--url",
            provider_url,
            "--repository",
            "acme/shop",
            "--workflow",
            "tests.yml",
            "--ref",
            "main",
            "--credential-env",
            "GH_TOKEN",
        ])
        .ok();
    let cases = api.get("/api/testcase?projectId=1&size=1000");
    let case = cases["content"][0]["id"].as_i64().unwrap().to_string();
    let run = cli
        .run(&[
            "testcase",
            "run",
            "--launch-name",
            "Triggered",
            "--case",
            &case,
        ])
        .ok();
    let launch: i64 = run.stdout.trim().parse().unwrap();
    let runs = api.job_runs(launch);
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

#[test]
fn a_trigger_over_https_needs_the_providers_ca_and_ca_cert_supplies_it() {
    let pki = make_pki();
    let (backend, seen) = provider();
    let front = TlsFront::start(&backend, &pki);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("company-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let ca = ca.to_str().unwrap();

    // Without the CA: the certificate is named as the problem, not "unreachable".
    let server = TestServer::start();
    let run = run_one_case(&server, &front.url);
    assert_eq!(run["stage"], "run_failure", "{run}");
    let msg = run["errorMessage"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "the TLS certificate of GitHub at {} is not trusted: it was issued by a certificate authority this machine does not trust",
            front.url
        )),
        "{msg}"
    );
    assert!(msg.contains("--ca-cert FILE"), "{msg}");
    assert!(!msg.contains("cannot reach"), "{msg}");
    assert!(front.connections() >= 1, "the handshake was tried");
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the provider"
    );
    drop(server);

    // `--ca-cert`: triggered, the request reached the provider.
    let server = TestServer::start_with(&["--ca-cert", ca]);
    let run = run_one_case(&server, &front.url);
    assert_eq!(run["stage"], "scheduled", "{run}");
    assert!(run["errorMessage"].is_null(), "{run}");
    assert_eq!(
        seen.lock().unwrap().drain(..).collect::<Vec<_>>(),
        ["POST /repos/acme/shop/actions/workflows/tests.yml/dispatches HTTP/1.1"]
    );
    drop(server);

    // ONELAUNCH_CA_CERT does the same.
    let server = TestServer::start_with_env(&[], &[("ONELAUNCH_CA_CERT", ca)]);
    assert_eq!(run_one_case(&server, &front.url)["stage"], "scheduled");
    assert_eq!(seen.lock().unwrap().len(), 1);

    // A file that holds no certificate stops the server at start, naming it.
    let bad = dir.path().join("not-a-ca.pem");
    std::fs::write(&bad, "hello").unwrap();
    let out = std::process::Command::new(bin())
        .args(["server", "--listen", "127.0.0.1:0", "--ca-cert"])
        .arg(&bad)
        .arg("--data")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "--ca-cert {}: holds no PEM certificate",
            bad.display()
        )),
        "{err}"
    );
}
