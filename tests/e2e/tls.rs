//! TLS trust: a server behind a private CA. A TLS front on loopback (a
//! certificate for 127.0.0.1 from a CA made here) forwards to the real server;
//! the real CLI uploads through it.

use std::path::Path;

use crate::pki::{make_pki, TlsFront};
use crate::support::*;

fn upload(cli: &Cli, dir: &Path, name: &str, extra: &[&str]) -> Run {
    let mut args = vec!["upload", "--launch-name", name];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    cli.run(&args)
}

fn launch_named(server: &TestServer, name: &str) -> Option<serde_json::Value> {
    server
        .api()
        .launches(1)
        .into_iter()
        .find(|l| l["name"] == name)
}

#[test]
fn a_server_behind_a_private_ca_is_refused_once_then_trusted_by_ca_cert_ssl_cert_file_or_insecure()
{
    let server = TestServer::start();
    let pki = make_pki();
    let front = TlsFront::start(&server.url, &pki);
    let tmp = tempfile::tempdir().unwrap();
    let ca_file = tmp.path().join("company-ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let ca = ca_file.to_str().unwrap();
    let results = tmp.path().join("results");
    generate_results(&results, "tls", 6);
    let cli = Cli::new(&front.url, TOKEN);

    // Without the CA: its own exit code and message, at the first attempt.
    let run = upload(&cli, &results, "untrusted", &[]).code(11);
    let out = run.all();
    assert!(
        out.contains(&format!("TLS certificate of {} is not trusted", front.url)),
        "{out}"
    );
    assert!(out.contains("UnknownIssuer"), "{out}");
    for fix in ["--ca-cert", "SSL_CERT_FILE", "--insecure"] {
        assert!(out.contains(fix), "the message names {fix}: {out}");
    }
    assert!(!out.contains("cannot reach"), "{out}");
    assert!(!out.contains("retry"), "{out}");
    assert!(!out.contains(TOKEN), "{out}");
    assert_eq!(front.connections(), 1, "no retries: one handshake");
    assert!(
        !results.join(".onelaunch-spool").exists(),
        "nothing is spooled for a certificate error"
    );
    assert!(launch_named(&server, "untrusted").is_none());

    // --ca-cert FILE.
    let run = upload(&cli, &results, "with ca-cert", &["--ca-cert", ca]).ok();
    assert!(!run.all().contains("warning"), "{}", run.all());
    // ALLURE_CA_CERT.
    upload(
        &cli.clone().env("ALLURE_CA_CERT", ca),
        &results,
        "with env",
        &[],
    )
    .ok();
    // SSL_CERT_FILE.
    upload(
        &cli.clone().env("SSL_CERT_FILE", ca),
        &results,
        "with ssl_cert_file",
        &[],
    )
    .ok();
    // SSL_CERT_DIR (a directory of PEM files).
    let dir = tmp.path().join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&ca_file, dir.join("company-ca.pem")).unwrap();
    upload(
        &cli.clone().env("SSL_CERT_DIR", dir.to_str().unwrap()),
        &results,
        "with ssl_cert_dir",
        &[],
    )
    .ok();
    // --insecure, with one warning on stderr.
    let run = upload(&cli, &results, "insecure", &["--insecure"]).ok();
    assert_eq!(
        run.stderr.matches("warning: --insecure").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(!run.all().contains(TOKEN));
    // ALLURE_INSECURE.
    upload(
        &cli.clone().env("ALLURE_INSECURE", "true"),
        &results,
        "insecure env",
        &[],
    )
    .ok();

    for name in [
        "with ca-cert",
        "with env",
        "with ssl_cert_file",
        "with ssl_cert_dir",
        "insecure",
        "insecure env",
    ] {
        let launch = launch_named(&server, name).unwrap_or_else(|| panic!("launch {name}"));
        let id = launch["id"].as_i64().unwrap();
        assert_eq!(server.api().results(id).len(), 6, "{name}");
    }
}

#[test]
fn a_ca_cert_that_is_not_a_certificate_is_named_in_the_error() {
    let server = TestServer::start();
    let pki = make_pki();
    let front = TlsFront::start(&server.url, &pki);
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("not-a-cert.pem");
    std::fs::write(&bad, "hello\n").unwrap();
    let results = tmp.path().join("results");
    generate_results(&results, "bad", 1);
    let cli = Cli::new(&front.url, TOKEN);
    let run = upload(
        &cli,
        &results,
        "bad ca",
        &["--ca-cert", bad.to_str().unwrap()],
    )
    .code(1);
    assert!(run.all().contains("not-a-cert.pem"), "{}", run.all());
    let run = upload(
        &cli,
        &results,
        "missing ca",
        &["--ca-cert", "/nonexistent/ca.pem"],
    )
    .code(1);
    assert!(run.all().contains("/nonexistent/ca.pem"), "{}", run.all());
    assert_eq!(
        front.connections(),
        0,
        "nothing is sent without trust set up"
    );
}
