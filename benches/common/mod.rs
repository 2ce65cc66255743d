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

/// Whether a benchmark's on/off switch `name` is on: set, not empty, not `0`
/// (`ONELAUNCH_BENCH_KEEP=1`, `ONELAUNCH_BENCH_WARM=1`; any other value
/// counts as on too, the same for every switch).
#[allow(dead_code)] // not every bench has switches
pub fn switch(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether `ONELAUNCH_BENCH_KEEP` asks to keep what a run wrote (the
/// generated results, the server's data directory and log) for a later look.
#[allow(dead_code)] // not every bench removes what it wrote
pub fn keep_all() -> bool {
    switch("ONELAUNCH_BENCH_KEEP")
}

/// Where a server's log goes: with `ONELAUNCH_BENCH_SERVER_LOG=<filter>`
/// (an `ONELAUNCH_LOG` filter such as `tower_http=debug,sqlx=debug`), the
/// file `<data>.log` beside its data directory, which the benchmark prints;
/// without it, nowhere, at level `warn`.
fn server_log(data: &Path) -> (String, Stdio) {
    match std::env::var("ONELAUNCH_BENCH_SERVER_LOG") {
        Ok(filter) if !filter.is_empty() => {
            let mut name = data.as_os_str().to_owned();
            name.push(".log");
            let path = PathBuf::from(name);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("server log {}: {e}", path.display()));
            eprintln!("   server log: {}", path.display());
            (filter, Stdio::from(file))
        }
        _ => ("warn".to_string(), Stdio::null()),
    }
}

/// Starts `onelaunch server` with `data` as data directory, on SQLite or on
/// the given database URL, and waits for its address.
pub fn start_server(data: &Path, db: Option<&str>) -> Server {
    let (filter, log) = server_log(data);
    let mut cmd = Command::new(bin());
    cmd.args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(["--init-token", TOKEN])
        .env("ONELAUNCH_LOG", filter)
        .stdout(Stdio::piped())
        .stderr(log);
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

/// A `/proc/<pid>/status` field in KiB (`VmHWM` = peak resident set,
/// `VmRSS` = resident set now); 0 when the process is gone.
#[allow(dead_code)] // not every bench reads every field
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The numeric fields of `/proc/<pid>/stat` after the command name, numbered
/// as in proc(5) (field 14 is utime): `(ppid, utime + stime, cutime + cstime)`
/// in clock ticks.
#[allow(dead_code)]
pub fn stat_ticks(pid: u32) -> Option<(u32, u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state).
    let at = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some((at(4)? as u32, at(14)? + at(15)?, at(16)? + at(17)?))
}

/// CPU time (user + system) a process has used so far, in seconds.
#[allow(dead_code)]
pub fn cpu_secs(pid: u32) -> f64 {
    stat_ticks(pid).map(|t| t.1).unwrap_or(0) as f64 / clk_tck()
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
#[allow(dead_code)]
pub fn clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}
