//! A local release on loopback, made by the release process's own scripts:
//! `scripts/release/package` packs the built binary as this machine's Linux
//! asset (and small stand-ins under the other targets' names),
//! `scripts/release/checksums` writes `SHA256SUMS` and `checksums.json`, and
//! `scripts/release/pin` commits them into a copy of the wrappers, as the
//! release workflow does. The assets are served over HTTPS (a certificate from
//! a CA made in the test; `ca_file` holds the CA for curl/wget/Java) at
//! `<base_url>/<version>/<asset>`, the layout of GitHub's
//! `releases/download`. Every request is logged (`requests()`), and an asset
//! can be tampered with after pinning (`tamper()`), as a compromised mirror or
//! a man in the middle would.
//!
//! Used by the wrapper install tests (GitHub Action under act, GitLab
//! component under gitlab-ci-local, Jenkins step under groovy).

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::pki::{make_pki, TlsFront};
use crate::support::*;

/// The targets a release has (.github/workflows/release.yml).
pub const TARGETS: [&str; 5] = [
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
];

pub struct LocalRelease {
    dir: tempfile::TempDir,
    pub version: String,
    /// `https://127.0.0.1:PORT/releases/download`: an asset is at
    /// `<base_url>/<version>/<asset>`.
    pub base_url: String,
    /// The test CA in PEM (SSL_CERT_FILE / CURL_CA_BUNDLE for the installers).
    pub ca_file: PathBuf,
    /// The release's checksums.json (as scripts/release/checksums wrote it).
    pub checksums: PathBuf,
    http: Child,
    _front: TlsFront,
    log: PathBuf,
}

/// The release target of this machine's Linux asset.
pub fn host_target() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-musl",
        _ => "x86_64-unknown-linux-musl",
    }
}

fn run_script(cmd: &mut Command) -> String {
    let o = cmd.output().expect("release script");
    assert!(
        o.status.success(),
        "{:?}: {}{}",
        cmd,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

impl LocalRelease {
    /// Packages `bin()` as this machine's asset of `version`, stand-ins for
    /// the other targets, writes the checksums and serves them.
    pub fn start(version: &str) -> LocalRelease {
        Self::start_with(version, &bin())
    }

    pub fn start_with(version: &str, binary: &Path) -> LocalRelease {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        let dist = root.join("releases/download").join(version);
        fs::create_dir_all(&dist).unwrap();
        let stand_in = dir.path().join("stand-in");
        fs::write(
            &stand_in,
            "not a binary for this machine: a stand-in of the test release\n",
        )
        .unwrap();
        for target in TARGETS {
            let from = if target == host_target() {
                binary
            } else {
                stand_in.as_path()
            };
            run_script(
                Command::new(repo().join("scripts/release/package"))
                    .args([version, target])
                    .arg(from)
                    .arg(&dist),
            );
        }
        run_script(
            Command::new(repo().join("scripts/release/checksums"))
                .arg(version)
                .arg(&dist)
                .args(["--expect", "5"]),
        );
        let checksums = dir.path().join("checksums.json");
        fs::copy(dist.join("checksums.json"), &checksums).unwrap();

        // A plain-HTTP static server on loopback (python's http.server, one
        // log line per request) behind a TLS front with a test CA.
        let log = dir.path().join("requests.log");
        let port_file = dir.path().join("port");
        let script = r#"
import functools, http.server, sys
root, port_file, log = sys.argv[1], sys.argv[2], sys.argv[3]
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        with open(log, "a") as f:
            f.write("%s %s\n" % (self.path, args[1] if len(args) > 1 else "-"))
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=root))
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
"#;
        let http = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&root)
            .arg(&port_file)
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 for the local release server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = fs::read_to_string(&port_file) {
                break p;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the local release server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let pki = make_pki();
        let front = TlsFront::start(&format!("http://127.0.0.1:{port}"), &pki);
        let ca_file = dir.path().join("release-ca.pem");
        fs::write(&ca_file, &pki.ca_pem).unwrap();
        let base_url = format!("{}/releases/download", front.url);
        LocalRelease {
            dir,
            version: version.to_string(),
            base_url,
            ca_file,
            checksums,
            http,
            _front: front,
            log,
        }
    }

    /// The file name of the asset of `target`.
    pub fn asset_name(&self, target: &str) -> String {
        let ext = if target.contains("-windows-") {
            "zip"
        } else {
            "tar.gz"
        };
        format!("onelaunch-{}-{target}.{ext}", self.version)
    }

    /// The URL of the asset of `target`.
    pub fn asset_url(&self, target: &str) -> String {
        format!(
            "{}/{}/{}",
            self.base_url,
            self.version,
            self.asset_name(target)
        )
    }

    /// The served file of the asset of `target`.
    pub fn asset_path(&self, target: &str) -> PathBuf {
        self.dir
            .path()
            .join("www/releases/download")
            .join(&self.version)
            .join(self.asset_name(target))
    }

    /// The SHA-256 the release recorded for the asset of `target`.
    pub fn sha256(&self, target: &str) -> String {
        let doc: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&self.checksums).unwrap()).unwrap();
        doc[self.asset_name(target)]
            .as_str()
            .expect("asset in checksums.json")
            .to_string()
    }

    /// Commits the release's checksums into the wrappers under `root` (a copy
    /// of the repository's `plugins/`), with the release's own pin script.
    pub fn pin_into(&self, root: &Path) -> String {
        run_script(
            Command::new(repo().join("scripts/release/pin"))
                .arg(&self.checksums)
                .arg(root),
        )
    }

    /// Replaces the served asset of `target` by a different archive holding a
    /// different `onelaunch` (after the checksums were pinned).
    pub fn tamper(&self, target: &str) {
        let evil = self.dir.path().join("evil");
        fs::write(&evil, "#!/bin/sh\necho tampered\n").unwrap();
        let out = self.dir.path().join("evil-dist");
        let asset = run_script(
            Command::new(repo().join("scripts/release/package"))
                .args([self.version.as_str(), target])
                .arg(&evil)
                .arg(&out),
        );
        fs::copy(asset.trim(), self.asset_path(target)).unwrap();
    }

    /// The request paths served so far, one per line, with their status.
    pub fn requests(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Number of requests for the asset of `target`.
    pub fn downloads(&self, target: &str) -> usize {
        let name = self.asset_name(target);
        BufReader::new(self.requests().as_bytes())
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains(&name))
            .count()
    }
}

impl Drop for LocalRelease {
    fn drop(&mut self) {
        let _ = self.http.kill();
        let _ = self.http.wait();
    }
}

#[test]
fn the_local_release_serves_what_the_release_scripts_made_and_pins_the_wrappers() {
    let release = LocalRelease::start("v9.9.9");
    // SHA256SUMS verifies with sha256sum, as a user checks a download.
    let dist = release.asset_path(host_target());
    let o = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(dist.parent().unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // Served over HTTPS with the test CA; byte-identical to what was hashed.
    let got = tempfile::tempdir().unwrap();
    let file = got.path().join("asset");
    let o = Command::new("curl")
        .args(["-fsS", "--cacert"])
        .arg(&release.ca_file)
        .arg("-o")
        .arg(&file)
        .arg(release.asset_url(host_target()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(fs::read(&file).unwrap(), fs::read(&dist).unwrap());
    assert_eq!(
        release.downloads(host_target()),
        1,
        "{}",
        release.requests()
    );
    // Without the CA, curl refuses the certificate.
    let o = Command::new("curl")
        .args(["-fsS", "-o", "/dev/null"])
        .arg(release.asset_url(host_target()))
        .env_remove("SSL_CERT_FILE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .unwrap();
    assert!(!o.status.success());

    // The pin script writes the hashes into a copy of the wrappers.
    let root = tempfile::tempdir().unwrap();
    let ok = Command::new("cp")
        .arg("-a")
        .arg(repo().join("plugins"))
        .arg(root.path())
        .status()
        .unwrap();
    assert!(ok.success());
    release.pin_into(root.path());
    let github = fs::read_to_string(root.path().join("plugins/github/checksums.json")).unwrap();
    assert!(github.contains("\"version\": \"v9.9.9\""), "{github}");
    assert!(github.contains(&release.sha256(host_target())), "{github}");
    let gitlab =
        fs::read_to_string(root.path().join("plugins/gitlab/templates/onelaunch.yml")).unwrap();
    assert!(
        gitlab.contains("      default: \"v9.9.9\" # pinned: version\n"),
        "{gitlab}"
    );
    let x86 = release.sha256("x86_64-unknown-linux-musl");
    assert!(
        gitlab.contains(&format!(
            "      default: \"{x86}\" # pinned: x86_64-unknown-linux-musl\n"
        )),
        "{gitlab}"
    );
    let jenkins = root
        .path()
        .join("plugins/jenkins/resources/onelaunch/checksums.json");
    assert_eq!(
        fs::read_to_string(jenkins).unwrap(),
        github,
        "Jenkins library pinned"
    );

    // Tampering changes the served bytes, not the pinned hash.
    release.tamper(host_target());
    let o = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(dist.parent().unwrap())
        .output()
        .unwrap();
    assert!(!o.status.success(), "the tampered asset fails SHA256SUMS");
}
