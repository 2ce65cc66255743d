//! The container images (deploy/image/build): both variants are built from
//! `scratch` with the static binary (scripts/build-static), unpacked with
//! `umoci` into a root file system and run there with `chroot` as the image's
//! user (65532), without any container runtime:
//!
//! - the plain image holds exactly the binary, the CA bundle, the data dir
//!   (owned by 65532) and `/tmp` — no shell; its ENTRYPOINT + CMD start the
//!   server (listen address swapped for 127.0.0.1:0), and the CLI inside the
//!   same root runs a CI-led flow against it, checked through the API;
//! - the `-ci` variant adds a static busybox as `/bin/sh` and the usual
//!   applets, has no ENTRYPOINT, and runs a job-like shell script;
//! - the OCI config carries the entrypoint, user, port, volume and labels,
//!   and the build is reproducible with SOURCE_DATE_EPOCH.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::*;

const INSTALLER: &str = "scripts/tools/buildah.sh";
const DATA: &str = "/var/lib/onelaunch";
const SERVER_CMD: [&str; 5] = ["server", "--listen", "0.0.0.0:8080", "--data", DATA];
/// The applets a CI job script needs at least.
const APPLETS: [&str; 14] = [
    "sh",
    "cat",
    "ls",
    "mkdir",
    "rm",
    "tar",
    "sha256sum",
    "wget",
    "env",
    "printf",
    "tr",
    "cut",
    "grep",
    "test",
];

fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn on_path(name: &str) -> bool {
    find_on_path(name).is_some()
}

/// buildah, umoci, chroot, a static busybox and the CA bundle, or `false`
/// after a loud notice; with ONELAUNCH_REQUIRE_RUNNERS=1 a missing tool fails.
fn tools_or_skip() -> bool {
    let mut missing: Vec<&str> = ["buildah", "umoci", "chroot", "file"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    if !Path::new("/bin/busybox").is_file() {
        missing.push("/bin/busybox (busybox-static)");
    }
    if !Path::new("/etc/ssl/certs/ca-certificates.crt").is_file() {
        missing.push("/etc/ssl/certs/ca-certificates.crt (ca-certificates)");
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{} not installed: run {INSTALLER}", missing.join(", "));
    if std::env::var("ONELAUNCH_REQUIRE_RUNNERS").as_deref() == Ok("1") {
        panic!("{msg} (ONELAUNCH_REQUIRE_RUNNERS=1)");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Runs deploy/image/build into `out`; returns the printed layout path.
fn build_image(bin: &Path, out: &Path, epoch: Option<&str>) -> PathBuf {
    let mut cmd = Command::new(repo().join("deploy/image/build"));
    cmd.arg("--binary")
        .arg(bin)
        .args(["--version", &version(), "--arch", "amd64", "--output"])
        .arg(out)
        .current_dir(repo())
        .stderr(Stdio::inherit());
    match epoch {
        Some(e) => cmd.env("SOURCE_DATE_EPOCH", e),
        None => cmd.env_remove("SOURCE_DATE_EPOCH"),
    };
    let o = cmd.output().expect("run deploy/image/build");
    assert!(
        o.status.success(),
        "deploy/image/build failed (its output is above)"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let layout = PathBuf::from(stdout.lines().last().expect("layout path").trim());
    assert_eq!(layout.canonicalize().unwrap(), out.canonicalize().unwrap());
    layout
}

/// Both variants, built once per test run into the target dir.
struct Built {
    bin: PathBuf,
    layout: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let bin = crate::static_binary::build_static();
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("container_image");
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let layout = build_image(&bin, &base.join("layout"), None);
        Built { bin, layout }
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    layout.join("blobs/sha256").join(hex)
}

/// The manifest digest of each tag of the layout.
fn tags(layout: &Path) -> BTreeMap<String, String> {
    let index = read_json(&layout.join("index.json"));
    index["manifests"]
        .as_array()
        .expect("index.json manifests")
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .expect("ref name")
                    .to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The OCI image config of `tag`.
fn image_config(layout: &Path, tag: &str) -> Value {
    let digest = tags(layout)
        .remove(tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {}", layout.display()));
    let manifest = read_json(&blob(layout, &digest));
    assert_eq!(
        manifest["layers"].as_array().map(Vec::len),
        Some(1),
        "one layer: {manifest}"
    );
    read_json(&blob(
        layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
}

/// `umoci unpack` of `tag` (as root: owners kept); returns the rootfs.
fn unpack(layout: &Path, tag: &str, into: &Path) -> PathBuf {
    let bundle = into.join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(&bundle)
        .output()
        .expect("run umoci");
    assert!(
        out.status.success(),
        "umoci unpack {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bundle.join("rootfs")
}

/// Every path of the root: kind, mode, owner (and a symlink's target).
fn listing(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let owner = format!("{}:{}", meta.uid(), meta.gid());
            let mode = meta.permissions().mode() & 0o7777;
            let desc = if meta.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                walk(root, &path, out);
                format!("dir {mode:o} {owner}")
            } else {
                format!("file {mode:o} {owner}")
            };
            out.insert(rel, desc);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn plain_listing() -> BTreeMap<String, String> {
    [
        ("etc", "dir 755 0:0"),
        ("etc/ssl", "dir 755 0:0"),
        ("etc/ssl/certs", "dir 755 0:0"),
        ("etc/ssl/certs/ca-certificates.crt", "file 644 0:0"),
        ("tmp", "dir 1777 0:0"),
        ("usr", "dir 755 0:0"),
        ("usr/local", "dir 755 0:0"),
        ("usr/local/bin", "dir 755 0:0"),
        ("usr/local/bin/onelaunch", "file 755 0:0"),
        ("var", "dir 755 0:0"),
        ("var/lib", "dir 755 0:0"),
        ("var/lib/onelaunch", "dir 700 65532:65532"),
    ]
    .into_iter()
    .map(|(p, d)| (p.to_string(), d.to_string()))
    .collect()
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The common content of both variants: the very binary and CA bundle.
fn assert_same_files(root: &Path, bin: &Path) {
    assert_eq!(
        sha256_hex(&root.join("usr/local/bin/onelaunch")),
        sha256_hex(bin),
        "the image's binary is not the static build"
    );
    assert_eq!(
        std::fs::read(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap(),
        std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap(),
        "the image's CA bundle is not ca-certificates'"
    );
}

/// The image's environment (its `Env`), as a container runtime sets it for a
/// user without a passwd entry (HOME=/), plus `extra`.
fn image_env(config: &Value, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = config["config"]["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .map(|v| {
            let (k, v) = v.as_str().unwrap().split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    env.push(("HOME".into(), "/".into()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// A command run inside `root` as the image's user, like `docker run` would.
fn in_image(root: &Path, user: &str, env: &[(String, String)], argv: &[String]) -> Command {
    // The host's chroot, found on the test's PATH (the command's own PATH is
    // the image's).
    let mut c = Command::new(find_on_path("chroot").expect("chroot"));
    c.arg(format!("--userspec={user}"))
        .arg(root)
        .args(argv)
        .current_dir("/")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    c
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn assert_common_config(config: &Value) {
    assert_eq!(config["os"], "linux", "{config}");
    assert_eq!(config["architecture"], "amd64", "{config}");
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532", "{c}");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object(), "{c}");
    assert!(c["Volumes"][DATA].is_object(), "{c}");
    let labels = &c["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], version());
    assert_eq!(
        labels["org.opencontainers.image.licenses"],
        env!("CARGO_PKG_LICENSE")
    );
    assert_eq!(
        labels["org.opencontainers.image.description"],
        env!("CARGO_PKG_DESCRIPTION")
    );
    let cargo = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let repository = cargo
        .lines()
        .find_map(|l| l.strip_prefix("repository = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("Cargo.toml repository");
    assert_eq!(labels["org.opencontainers.image.source"], repository);
}

/// The server inside the root; killed on drop.
struct ImageServer(Child);

impl Drop for ImageServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn plain_image_runs_its_server_cmd_and_a_ci_led_flow_without_a_shell() {
    if !tools_or_skip() {
        return;
    }
    assert!(
        running_as_root(),
        "building the image and chrooting into it needs root (uid 0); \
         run the suite as root (CI does) — it is never skipped"
    );
    let built = built();
    let tag = version();
    let config = image_config(&built.layout, &tag);
    assert_common_config(&config);
    let entrypoint = strings(&config["config"]["Entrypoint"]);
    let cmd = strings(&config["config"]["Cmd"]);
    assert_eq!(entrypoint, ["/usr/local/bin/onelaunch"]);
    assert_eq!(cmd, SERVER_CMD);

    let tmp = tempfile::tempdir().unwrap();
    let root = unpack(&built.layout, &tag, tmp.path());
    assert_eq!(listing(&root), plain_listing(), "the plain image's files");
    assert!(!root.join("bin/sh").exists(), "a shell in the plain image");
    assert_same_files(&root, &built.bin);

    // `docker run --rm IMAGE --version`: the entrypoint with other arguments.
    let env = image_env(&config, &[]);
    let argv: Vec<String> = entrypoint
        .iter()
        .cloned()
        .chain(["--version".into()])
        .collect();
    let out = Run::from(
        in_image(&root, "65532:65532", &env, &argv)
            .output()
            .unwrap(),
    )
    .ok();
    assert_eq!(
        out.stdout.trim(),
        format!("onelaunch {}", env!("CARGO_PKG_VERSION")),
        "{}",
        out.all()
    );

    // `docker run -e ONELAUNCH_INIT_TOKEN IMAGE`: ENTRYPOINT + CMD, only the
    // listen address changed (no network namespace here).
    let argv: Vec<String> = entrypoint
        .iter()
        .chain(cmd.iter())
        .map(|a| {
            if a == "0.0.0.0:8080" {
                "127.0.0.1:0".to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    assert!(argv.contains(&"127.0.0.1:0".to_string()), "{argv:?}");
    let server_env = image_env(
        &config,
        &[("ONELAUNCH_INIT_TOKEN", TOKEN), ("ONELAUNCH_LOG", "info")],
    );
    let mut child = in_image(&root, "65532:65532", &server_env, &argv)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the image's server");
    let waited = crate::static_binary::listening_url(&mut child);
    let server = ImageServer(child);
    let url = match waited {
        Ok(url) => url,
        Err(log) => {
            drop(server);
            panic!("the image's server did not start: {log}");
        }
    };

    // The CLI, inside the same root and as the same user: a CI-led flow on
    // results copied into the root.
    generate_results(&root.join("tmp/results"), "image", 8);
    let cli = Cli::new(&url, TOKEN).github("16016", "image");
    let cli_env: Vec<(String, String)> = image_env(&config, &[])
        .into_iter()
        .chain(
            cli.env
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "PATH" | "HOME" | "TMPDIR" | "LANG"))
                .map(|(k, v)| (k.clone(), v.clone())),
        )
        .collect();
    let run = |args: &[&str]| -> Run {
        let argv: Vec<String> = std::iter::once("onelaunch")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let out = in_image(&root, "65532:65532", &cli_env, &argv)
            .output()
            .expect("run onelaunch in the image");
        Run::from(out).ok()
    };
    crate::static_binary::ci_led_flow(&run, &url, "Image check", "/tmp/results");
    drop(server);

    // The server kept its data in the image's data dir, as the image's user.
    let data: Vec<_> = std::fs::read_dir(root.join("var/lib/onelaunch"))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert!(!data.is_empty(), "nothing in the image's data dir");
    for e in &data {
        assert_eq!(e.metadata().unwrap().uid(), 65532, "{:?}", e.path());
    }
}

#[test]
fn ci_image_adds_a_busybox_shell_for_job_scripts_and_no_entrypoint() {
    if !tools_or_skip() {
        return;
    }
    assert!(
        running_as_root(),
        "building the image and chrooting into it needs root (uid 0); \
         run the suite as root (CI does) — it is never skipped"
    );
    let built = built();
    let tag = format!("{}-ci", version());
    let config = image_config(&built.layout, &tag);
    assert_common_config(&config);
    let entrypoint = &config["config"]["Entrypoint"];
    assert!(
        entrypoint.is_null() || entrypoint.as_array().is_some_and(Vec::is_empty),
        "the -ci image has an entrypoint: {entrypoint}"
    );
    let cmd = strings(&config["config"]["Cmd"]);
    let mut server = vec!["/usr/local/bin/onelaunch".to_string()];
    server.extend(SERVER_CMD.iter().map(|s| s.to_string()));
    assert_eq!(cmd, server);

    let tmp = tempfile::tempdir().unwrap();
    let root = unpack(&built.layout, &tag, tmp.path());
    assert_same_files(&root, &built.bin);

    // The plain image's files, plus /bin: busybox and links to it only.
    let mut files = listing(&root);
    let mut bin: BTreeMap<String, String> = BTreeMap::new();
    files.retain(|path, desc| match path.strip_prefix("bin/") {
        Some(name) => {
            bin.insert(name.to_string(), desc.clone());
            false
        }
        None => true,
    });
    let mut expected = plain_listing();
    expected.insert("bin".into(), "dir 755 0:0".into());
    assert_eq!(files, expected, "the -ci image's files besides /bin");
    assert_eq!(bin.remove("busybox").as_deref(), Some("file 755 0:0"));
    let kind = Command::new("file")
        .arg(root.join("bin/busybox"))
        .output()
        .unwrap();
    let kind = String::from_utf8_lossy(&kind.stdout);
    assert!(
        kind.contains("statically linked") || kind.contains("static-pie linked"),
        "busybox: {kind}"
    );
    for (name, desc) in &bin {
        assert_eq!(desc, "link -> busybox", "/bin/{name}");
    }
    for applet in APPLETS {
        assert!(bin.contains_key(applet), "no /bin/{applet}: {bin:?}");
    }
    let env = image_env(&config, &[]);
    let sh = |script: &str| -> Run {
        let argv = ["/bin/sh", "-c", script].map(String::from);
        Run::from(
            in_image(&root, "65532:65532", &env, &argv)
                .output()
                .expect("run /bin/sh in the -ci image"),
        )
    };
    // Every link is an applet this busybox has.
    let list = sh("busybox --list").ok();
    let have: Vec<&str> = list.stdout.lines().collect();
    for name in bin.keys() {
        assert!(
            have.contains(&name.as_str()),
            "busybox has no applet {name}"
        );
    }

    // What GitLab's docker executor does: a job script through the shell.
    let out = sh("onelaunch --version && sha256sum /usr/local/bin/onelaunch").ok();
    assert_eq!(
        out.stdout,
        format!(
            "onelaunch {}\n{}  /usr/local/bin/onelaunch\n",
            env!("CARGO_PKG_VERSION"),
            sha256_hex(&built.bin)
        )
    );
    let out = sh("set -e; mkdir /tmp/job && cd /tmp/job && printf 'a,b\\nc,d\\n' > f.csv \
         && tar -cf ../job.tar . && tar -tf ../job.tar | grep -c csv \
         && cut -d, -f2 f.csv | tr 'a-z' 'A-Z' && env | grep -c '^PATH=' && ls && cat f.csv | wc -l \
         && rm -r /tmp/job && test ! -e /tmp/job && echo done")
    .ok();
    assert_eq!(out.stdout, "1\nB\nD\n1\nf.csv\n2\ndone\n", "{}", out.all());
}

#[test]
fn image_build_is_reproducible_with_source_date_epoch() {
    if !tools_or_skip() {
        return;
    }
    assert!(running_as_root(), "building the image needs root (uid 0)");
    let bin = &built().bin;
    let tmp = tempfile::tempdir().unwrap();
    let a = build_image(bin, &tmp.path().join("a"), Some("1700000000"));
    let b = build_image(bin, &tmp.path().join("b"), Some("1700000000"));
    let (ta, tb) = (tags(&a), tags(&b));
    assert_eq!(
        ta.keys().collect::<Vec<_>>(),
        [&version(), &format!("{}-ci", version())]
    );
    assert_eq!(ta, tb, "two builds of the same inputs differ");
    let config = image_config(&a, &version());
    assert_eq!(config["created"], "2023-11-14T22:13:20Z", "{config}");
}
