//! Ingestion benchmark: generated results (10% with a 4 KB attachment)
//! uploaded by the real CLI into one launch on a real server, from one client
//! or from many concurrent job runs, on SQLite or PostgreSQL with one or more
//! replicas behind a round-robin proxy. Prints results/s and peak memory.
//!
//! ```text
//! cargo bench --bench ingest -- [--results N] [--jobs K] [--backend sqlite|postgres] [--replicas R]
//!                                 [--database-url postgres://…]
//! ```
//!
//! `--database-url` uses an existing (empty) PostgreSQL database instead of a
//! throwaway cluster, e.g. one with `pg_stat_statements` loaded.
//!
//! Also prints the floor for comparison: reading and hashing the same bytes,
//! and sending them once over loopback.

mod common;
#[path = "../tests/e2e/pg.rs"]
mod pg;
#[path = "../tests/e2e/proxy.rs"]
mod proxy;

use common::{bin, start_server, Server, TOKEN};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    results: usize,
    jobs: usize,
    backend: String,
    replicas: usize,
    database_url: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        results: 10_000,
        jobs: 20,
        backend: "sqlite".into(),
        replicas: 1,
        database_url: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--results" => a.results = v.parse().expect("--results N"),
            "--jobs" => a.jobs = v.parse().expect("--jobs K"),
            "--backend" => a.backend = v,
            "--replicas" => a.replicas = v.parse().expect("--replicas R"),
            "--database-url" => {
                a.backend = "postgres".into();
                a.database_url = Some(v);
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// Peak resident set (VmHWM) of a running process, in KiB.
fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn generate(dir: &Path, prefix: &str, n: usize) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    let mut bytes = 0u64;
    let attachment = "x".repeat(4096);
    for i in 0..n {
        let uuid = format!("{prefix}-{i}");
        let att = if i % 10 == 0 {
            let name = format!("{uuid}-attachment.txt");
            std::fs::write(dir.join(&name), &attachment).unwrap();
            bytes += 4096;
            format!(r#","attachments":[{{"name":"log","source":"{name}","type":"text/plain"}}]"#)
        } else {
            String::new()
        };
        let status = if i % 7 == 0 { "failed" } else { "passed" };
        let json = format!(
            r#"{{"uuid":"{uuid}","historyId":"h-{uuid}","name":"test {i}","fullName":"bench.{prefix}.test_{i}","status":"{status}","start":{s},"stop":{e},"labels":[{{"name":"suite","value":"{prefix}"}}],"steps":[{{"name":"step","status":"passed","start":{s},"stop":{e}}}]{att}}}"#,
            s = 1_700_000_000_000u64 + i as u64,
            e = 1_700_000_000_050u64 + i as u64,
        );
        bytes += json.len() as u64;
        std::fs::write(dir.join(format!("{uuid}-result.json")), json).unwrap();
    }
    bytes
}

fn floor(dirs: &[PathBuf]) -> (f64, f64) {
    // Read and hash (FNV-1a) every byte.
    let t = Instant::now();
    let mut all = Vec::new();
    let mut h: u64 = 0xcbf29ce484222325;
    for d in dirs {
        for e in std::fs::read_dir(d).unwrap() {
            let b = std::fs::read(e.unwrap().path()).unwrap();
            for x in &b {
                h = (h ^ *x as u64).wrapping_mul(0x100000001b3);
            }
            all.extend_from_slice(&b);
        }
    }
    let read_hash = t.elapsed().as_secs_f64();
    std::hint::black_box(h);
    // Send them once over loopback.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let sink = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        while s.read(&mut buf).unwrap_or(0) > 0 {}
    });
    let t = Instant::now();
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(&all).unwrap();
    drop(c);
    sink.join().unwrap();
    (read_hash, t.elapsed().as_secs_f64())
}

fn main() {
    let a = args();
    let work = tempfile::tempdir().unwrap();
    let per_job = a.results / a.jobs.max(1);
    let mut dirs = Vec::new();
    let mut bytes = 0;
    for j in 0..a.jobs {
        let d = work.path().join(format!("job{j}"));
        bytes += generate(&d, &format!("j{j}"), per_job);
        dirs.push(d);
    }
    let total = per_job * a.jobs;

    let cluster;
    let db = if let Some(url) = &a.database_url {
        Some(url.clone())
    } else if a.backend == "postgres" {
        cluster = pg::PgCluster::start().expect("PostgreSQL (scripts/tools/postgres.sh)");
        Some(cluster.database("bench"))
    } else {
        None
    };
    let data = work.path().join("data");
    let mut servers: Vec<Server> = (0..a.replicas.max(1))
        .map(|_| start_server(&data, db.as_deref()))
        .collect();
    let proxy = (servers.len() > 1)
        .then(|| proxy::RoundRobin::start(servers.iter().map(|s| s.url.clone()).collect()));
    let endpoint = proxy
        .as_ref()
        .map(|p| p.url.clone())
        .unwrap_or_else(|| servers[0].url.clone());

    let cli = |extra: &[(&str, String)]| {
        let mut c = Command::new(bin());
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ALLURE_ENDPOINT", &endpoint)
            .env("ALLURE_TOKEN", TOKEN)
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            c.env(k, v);
        }
        c
    };
    let out = cli(&[])
        .args([
            "launch",
            "create",
            "--launch-name",
            "bench",
            "--format",
            "ID",
        ])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let launch = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let t = Instant::now();
    let mut children: Vec<Child> = dirs
        .iter()
        .enumerate()
        .map(|(j, d)| {
            cli(&[
                ("GITLAB_CI", "true".into()),
                ("CI_PROJECT_ID", format!("{j}")),
                ("CI_PROJECT_NAME", format!("bench-{j}")),
                ("CI_PIPELINE_ID", format!("{}", 1000 + j)),
                ("ALLURE_LAUNCH_ID", launch.clone()),
            ])
            .arg("upload")
            .arg(d)
            .spawn()
            .unwrap()
        })
        .collect();
    let mut client_peak = 0u64;
    let mut server_peak = 0u64;
    loop {
        for c in &children {
            client_peak = client_peak.max(peak_kib(c.id()));
        }
        for s in &servers {
            server_peak = server_peak.max(peak_kib(s.child.id()));
        }
        let mut done = true;
        for c in children.iter_mut() {
            match c.try_wait().unwrap() {
                Some(st) => assert!(st.success(), "an upload failed: {st}"),
                None => done = false,
            }
        }
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let secs = t.elapsed().as_secs_f64();
    for s in &servers {
        server_peak = server_peak.max(peak_kib(s.child.id()));
    }

    // Check the count.
    let n: i64 = {
        let r = reqwest::blocking::Client::new()
            .get(format!(
                "{endpoint}/api/testresult?launchId={launch}&size=1"
            ))
            .header("Authorization", format!("api-token {TOKEN}"))
            .send()
            .unwrap();
        let v: serde_json::Value = r.json().unwrap();
        v["totalElements"].as_i64().unwrap()
    };
    assert_eq!(n as usize, total, "every result arrived");
    let (read_hash, send) = floor(&dirs);

    println!(
        "backend={} replicas={} results={} jobs={} bytes={:.1}MB",
        a.backend,
        servers.len(),
        total,
        a.jobs,
        bytes as f64 / 1e6
    );
    println!(
        "  upload: {secs:.2}s  {:.0} results/s  client peak RSS {:.1} MB (max of one uploader)  server peak RSS {:.1} MB (max of one replica)",
        total as f64 / secs,
        client_peak as f64 / 1024.0,
        server_peak as f64 / 1024.0
    );
    println!(
        "  floor: read+hash {read_hash:.3}s ({:.0} results/s), send once over loopback {send:.3}s",
        total as f64 / read_hash
    );
    drop(proxy);
    for s in servers.iter_mut() {
        let _ = s.child.kill();
        let _ = s.child.wait();
    }
}
