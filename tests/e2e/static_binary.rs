//! The releasable static binary (issue 15): `scripts/build-static` builds a
//! fully static x86_64 `onelaunch` (static glibc here; musl in the release
//! workflow), `file`/`ldd` show it static, and it runs a whole CI-led flow
//! inside an empty root: `chroot` into a directory holding only the binary, a
//! results folder, the server's data directory and `/tmp`. The server and the
//! CLI both run inside that root, so nothing from the host (no libc, no NSS
//! module, no `/etc`) can be what makes it work.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// Builds (or reuses, when up to date: cargo decides) the static binary.
pub(crate) fn build_static() -> PathBuf {
    let out = Command::new(repo().join("scripts/build-static"))
        .current_dir(repo())
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/build-static");
    assert!(
        out.status.success(),
        "scripts/build-static failed (its output is above)"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(stdout.lines().last().expect("binary path").trim());
    assert!(path.is_file(), "{} is not a file", path.display());
    path
}

fn tool_output(tool: &str, arg: &Path) -> String {
    let out = Command::new(tool).arg(arg).output().unwrap_or_else(|e| {
        panic!("cannot run `{tool}` ({e}): install it (scripts/tools/file.sh installs `file`)")
    });
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// The server inside the root; killed on drop.
struct ChrootServer(Child);

impl Drop for ChrootServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn in_root(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("chroot");
    c.arg(root).arg("/onelaunch").args(args).current_dir("/");
    c
}

#[test]
fn static_binary_runs_a_ci_led_flow_in_an_empty_root() {
    assert!(
        running_as_root(),
        "this test chroots into an empty root and must run as root (uid 0); \
         run the suite as root (CI does) — it is never skipped"
    );
    let bin = build_static();

    // The checks of the issue: `file` and `ldd` both call it static.
    let file = tool_output("file", &bin);
    assert!(
        file.contains("statically linked") || file.contains("static-pie linked"),
        "file: {file}"
    );
    assert!(!file.contains("interpreter"), "file: {file}");
    let ldd = tool_output("ldd", &bin);
    assert!(
        ldd.contains("not a dynamic executable") || ldd.contains("statically linked"),
        "ldd: {ldd}"
    );

    // The empty root: the binary, a results folder, a data dir, /tmp.
    let root_dir = tempfile::tempdir().expect("tempdir");
    let root = root_dir.path();
    std::fs::copy(&bin, root.join("onelaunch")).expect("copy the binary");
    generate_results(&root.join("results"), "static", 8);
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    let mut entries: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["data", "onelaunch", "results", "tmp"]);

    // The server, inside the root.
    let mut child = in_root(
        root,
        &[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "/data",
            "--init-token",
            TOKEN,
        ],
    )
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("ONELAUNCH_LOG", "info")
    .env("TMPDIR", "/tmp")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn chroot server");
    let waited = listening_url(&mut child);
    let server = ChrootServer(child);
    let url = match waited {
        Ok(url) => url,
        Err(log) => {
            drop(server);
            panic!("the static server in the empty root did not start: {log}");
        }
    };

    // The CLI, the same static binary, inside the same root: a CI-led flow.
    let cli = Cli::new(&url, TOKEN).github("15015", "static");
    let run = |args: &[&str]| -> Run {
        let out = in_root(root, args)
            .env_clear()
            .envs(&cli.env)
            .env("HOME", "/tmp")
            .env("TMPDIR", "/tmp")
            .output()
            .expect("run chroot onelaunch");
        Run::from(out).ok()
    };
    ci_led_flow(&run, &url, "Static release check", "/results");
    // The server kept its data inside the root.
    assert!(
        std::fs::read_dir(root.join("data")).unwrap().count() > 0,
        "nothing in the root's data dir"
    );
    drop(server);
}

/// A CI-led flow run by `run` (the CLI inside an empty root or an image):
/// start a job run, upload the example results at `results` (8 tests: 6
/// passed, 2 failed), stop, close; then checked from outside through the API
/// of the server at `url`. Answers the launch id.
pub(crate) fn ci_led_flow(
    run: &dyn Fn(&[&str]) -> Run,
    url: &str,
    name: &str,
    results: &str,
) -> i64 {
    run(&["job-run", "start", "--launch-name", name]);
    let env = parse_env(&run(&["job-run", "env"]).stdout);
    let launch_id: i64 = env["ALLURE_LAUNCH_ID"].parse().unwrap();
    let up = run(&["upload", results]);
    assert!(
        up.stdout.contains(&format!("/launch/{launch_id}")),
        "{}",
        up.all()
    );
    run(&["job-run", "stop"]);
    run(&["launch", "close", &launch_id.to_string()]);
    let api = Api {
        url: url.to_string(),
        token: TOKEN.to_string(),
        http: reqwest::blocking::Client::new(),
    };
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    assert_eq!(launches[0]["id"], launch_id);
    assert_eq!(launches[0]["closed"], true);
    assert_eq!(launches[0]["name"], name);
    assert_eq!(api.results(launch_id).len(), 8);
    let stat = api.statistic(launch_id);
    assert_eq!(stat.get("failed"), Some(&2), "{stat:?}");
    assert_eq!(stat.get("passed"), Some(&6), "{stat:?}");
    launch_id
}

/// Waits (60 s at most) for a server started with piped stdout and stderr to
/// print `listening on <url>`; answers the URL, or what it wrote on stderr.
pub(crate) fn listening_url(child: &mut Child) -> Result<String, String> {
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("listening on ") {
                let _ = tx.send(line.rsplit(' ').next().unwrap_or("").to_string());
            }
        }
    });
    let (etx, erx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
        }
        let _ = etx.send(all);
    });
    rx.recv_timeout(Duration::from_secs(60))
        .map_err(|_| erx.recv_timeout(Duration::from_secs(5)).unwrap_or_default())
}
