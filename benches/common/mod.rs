//! What the benchmarks share: the built binary, and a real server started on a
//! free loopback port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The admin token the benchmark servers are started with.
pub const TOKEN: &str = "bench-admin-token-7c41d9e0";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_onelaunch"))
}

pub struct Server {
    pub child: Child,
    pub url: String,
}

/// A benchmark that stops early (a failed check) does not leave its server
/// running.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `onelaunch server` with `data` as data directory, on SQLite or on
/// the given database URL, and waits for its address.
pub fn start_server(data: &Path, db: Option<&str>) -> Server {
    let mut cmd = Command::new(bin());
    cmd.args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(["--init-token", TOKEN])
        .env("ONELAUNCH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(db) = db {
        cmd.args(["--database-url", db]);
    }
    let mut child = cmd.spawn().expect("server");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    std::thread::spawn(move || for _ in out.lines() {});
    Server { child, url }
}
