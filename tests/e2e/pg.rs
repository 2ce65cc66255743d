//! A throwaway PostgreSQL cluster on a loopback port, in a temporary
//! directory, run as an unprivileged user (`postgres` when the tests run as
//! root). Installed by `scripts/tools/postgres.sh`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

fn pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl PgCluster {
    /// Starts a cluster, or returns `None` (after saying so loudly) when
    /// PostgreSQL is not installed and the runners are not required.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = pg_bin() else {
            if std::env::var("ONELAUNCH_REQUIRE_RUNNERS").is_ok_and(|v| v != "0") {
                panic!("PostgreSQL is not installed: run scripts/tools/postgres.sh");
            }
            eprintln!("SKIPPED: PostgreSQL not installed; run scripts/tools/postgres.sh");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let root = is_root();
        if root {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let cluster = PgCluster {
            dir,
            bin,
            port: free_port(),
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        cluster.start_again();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", cluster.port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let status = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .current_dir(self.dir.path())
                .status()
        } else {
            Command::new(&exe)
                .args(args)
                .current_dir(self.dir.path())
                .status()
        }
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(status.success(), "{tool} {args:?} failed");
    }

    /// Stops the cluster (fast shutdown: open connections are cut), as an
    /// outage would; [`PgCluster::start_again`] brings it back on its port.
    #[allow(dead_code)] // e2e only (this file is shared with benches and unit tests)
    pub fn stop(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts the (initialized or stopped) cluster, same data and port.
    pub fn start_again(&self) {
        let data = self.data();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("pg.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        );
    }

    /// Runs `sql` in database `db` with `psql` (stops at the first error).
    #[allow(dead_code)] // benches only (this file is shared with e2e and unit tests)
    pub fn psql(&self, db: &str, sql: &str) {
        let port = self.port.to_string();
        self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                db,
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        );
    }

    /// Creates a database and returns its URL.
    pub fn database(&self, name: &str) -> String {
        let port = self.port.to_string();
        self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", name],
        );
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap(), "-m", "immediate", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .status()
        } else {
            Command::new(&exe).args(args).status()
        };
    }
}
