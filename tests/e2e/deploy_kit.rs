//! The deployment kit under `deploy/`: the Compose files follow the Compose
//! Specification, the Kubernetes manifests the Kubernetes schemas, the
//! systemd unit passes `systemd-analyze verify`, and all of them agree with
//! docs/deploy.md. The scaled-out topology (three replicas on one PostgreSQL)
//! runs behind a real nginx with `deploy/nginx/onelaunch.conf`: a large
//! upload, a launch page's live events and results from several job runs
//! pass through it.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::pg::PgCluster;
use crate::support::*;

const IMAGE: &str = "ghcr.io/onelaunch/onelaunch";

fn deploy(rel: &str) -> PathBuf {
    repo().join("deploy").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn runners_required() -> bool {
    std::env::var("ONELAUNCH_REQUIRE_RUNNERS").is_ok_and(|v| v != "0")
}

/// Python with PyYAML and jsonschema (scripts/tools/jsonschema.sh), or `None`
/// after saying so when the runners are not required.
fn python() -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-c", "import yaml, jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !runners_required(),
            "python3 with PyYAML and jsonschema is missing: run scripts/tools/jsonschema.sh"
        );
        eprintln!(
            "SKIPPED: python3 with PyYAML and jsonschema missing; run scripts/tools/jsonschema.sh"
        );
        return None;
    }
    Some("python3")
}

/// The YAML documents of a file, as JSON.
fn yaml_docs(py: &str, path: &Path) -> Vec<Value> {
    let out = Command::new(py)
        .args([
            "-c",
            "import json, sys, yaml\nprint(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Array(docs) => docs,
        other => panic!("{other}"),
    }
}

fn yaml(py: &str, path: &Path) -> Value {
    let mut docs = yaml_docs(py, path);
    assert_eq!(docs.len(), 1, "{}: one document", path.display());
    docs.remove(0)
}

/// Runs tests/fixtures/schemas/validate.py; its output and whether it passed.
fn validate(py: &str, mode: &str, files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(py)
        .arg(repo().join("tests/fixtures/schemas/validate.py"))
        .arg(mode)
        .args(files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The image tag docs/deploy.md names (`ghcr.io/onelaunch/onelaunch:TAG`).
fn documented_tag() -> String {
    let docs = read(&repo().join("docs/deploy.md"));
    let prefix = format!("{IMAGE}:");
    let tags: BTreeSet<String> = docs
        .match_indices(&prefix)
        .map(|(i, _)| {
            let rest = &docs[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
                .unwrap_or(rest.len());
            rest[..end].to_string()
        })
        .filter(|t| t.starts_with('v') && t.len() > 1)
        .collect();
    assert_eq!(
        tags.len(),
        1,
        "docs/deploy.md names one image tag: {tags:?}"
    );
    tags.into_iter().next().unwrap()
}

/// `client_max_body_size` and similar nginx sizes in bytes (`256m`, `1g`, `512k`).
fn nginx_size(v: &str) -> u64 {
    let v = v.trim().to_ascii_lowercase();
    let (n, mul) = match v.chars().last().unwrap() {
        'k' => (&v[..v.len() - 1], 1024),
        'm' => (&v[..v.len() - 1], 1024 * 1024),
        'g' => (&v[..v.len() - 1], 1024 * 1024 * 1024),
        _ => (&v[..], 1),
    };
    n.parse::<u64>().unwrap() * mul
}

/// nginx times in seconds (`10m`, `1h`, `3600s`, `60`).
fn nginx_time(v: &str) -> u64 {
    let v = v.trim();
    let (n, mul) = match v.chars().last().unwrap() {
        's' => (&v[..v.len() - 1], 1),
        'm' => (&v[..v.len() - 1], 60),
        'h' => (&v[..v.len() - 1], 3600),
        _ => (v, 1),
    };
    n.parse::<u64>().unwrap() * mul
}

/// The directives of an nginx config block (the text between the braces
/// after `header`), without nested blocks: name → arguments.
fn nginx_block(conf: &str, header: &str) -> Vec<(String, String)> {
    let start = conf
        .find(header)
        .unwrap_or_else(|| panic!("no `{header}` block"));
    let body_start = start + conf[start..].find('{').unwrap() + 1;
    let mut depth = 0;
    let mut out = Vec::new();
    let mut stmt = String::new();
    for line in conf[body_start..].lines() {
        let line = line.split('#').next().unwrap().trim();
        for c in line.chars() {
            match c {
                '{' => {
                    depth += 1;
                    stmt.clear();
                }
                '}' if depth == 0 => return out,
                '}' => depth -= 1,
                ';' if depth == 0 => {
                    let s = stmt.trim().to_string();
                    let (k, v) = s.split_once(char::is_whitespace).unwrap_or((&s, ""));
                    out.push((k.to_string(), v.trim().to_string()));
                    stmt.clear();
                }
                ';' => stmt.clear(),
                c if depth == 0 => stmt.push(c),
                _ => {}
            }
        }
        stmt.push(' ');
    }
    panic!("`{header}` block does not end");
}

fn directive<'a>(block: &'a [(String, String)], name: &str) -> &'a str {
    block
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no `{name}` in {block:?}"))
}

const SSE_LOCATION: &str = "location ~ ^/launch/[0-9]+/events$";

#[test]
fn compose_files_follow_the_compose_specification_and_agree_with_the_docs() {
    let Some(py) = python() else { return };
    let files = [deploy("compose.yaml"), deploy("compose.scale.yaml")];
    let (ok, out) = validate(py, "compose", &files);
    assert!(ok, "{out}");
    assert_eq!(out.matches("ok ").count(), 2, "{out}");

    // The validator does reject what the specification does not allow.
    let bad = tempfile::tempdir().unwrap();
    let text = read(&files[0]).replace("    ports:\n", "    portz:\n");
    std::fs::write(bad.path().join("compose.yaml"), text).unwrap();
    let (ok, out) = validate(py, "compose", &[bad.path().join("compose.yaml")]);
    assert!(!ok && out.contains("portz"), "{out}");

    let tag = documented_tag();
    let image = format!("{IMAGE}:${{ONELAUNCH_VERSION:-{tag}}}");
    let docs = read(&repo().join("docs/deploy.md"));

    // Embedded default: one server, the image's data dir on a named volume,
    // port 8080, the init token from an env file, no shell healthcheck.
    let single = yaml(py, &files[0]);
    let s = &single["services"]["onelaunch"];
    assert_eq!(s["image"], image.as_str());
    assert_eq!(s["ports"], serde_json::json!(["8080:8080"]));
    assert_eq!(
        s["volumes"],
        serde_json::json!(["onelaunch-data:/var/lib/onelaunch"])
    );
    assert!(single["volumes"]
        .as_object()
        .unwrap()
        .contains_key("onelaunch-data"));
    assert_eq!(s["env_file"][0]["path"], "./onelaunch.env");
    assert!(s.get("healthcheck").is_none(), "the image has no shell");
    let env_example = read(&deploy("onelaunch.env.example"));
    assert!(env_example.contains("\nONELAUNCH_INIT_TOKEN=\n"));

    // Scale-out: PostgreSQL, three replicas sharing data dir and key, nginx.
    let scale = yaml(py, &files[1]);
    let sv = &scale["services"];
    let r = &sv["onelaunch"];
    assert_eq!(r["image"], image.as_str());
    assert_eq!(r["deploy"]["replicas"], 3);
    assert!(
        r.get("ports").is_none(),
        "replicas are reached through nginx"
    );
    assert_eq!(
        r["volumes"],
        serde_json::json!(["onelaunch-data:/var/lib/onelaunch"])
    );
    assert_eq!(r["depends_on"]["postgres"]["condition"], "service_healthy");
    let target = r["secrets"][0]["target"].as_str().unwrap();
    assert_eq!(
        r["environment"]["ONELAUNCH_SECRET_KEY_FILE"],
        format!("/run/secrets/{target}").as_str()
    );
    let source = r["secrets"][0]["source"].as_str().unwrap();
    assert_eq!(scale["secrets"][source]["file"], "./secret.key");
    assert!(env_example.contains("ONELAUNCH_DATABASE_URL=postgres://"));
    assert!(sv["postgres"]["image"]
        .as_str()
        .unwrap()
        .starts_with("postgres:"));
    assert!(read(&deploy("postgres.env.example")).contains("\nPOSTGRES_PASSWORD=\n"));
    let n = &sv["nginx"];
    assert_eq!(n["ports"], serde_json::json!(["8080:8080"]));
    let mount = n["volumes"][0].as_str().unwrap();
    let (host, container) = mount.split_once(':').unwrap();
    assert_eq!(host, "./nginx/onelaunch.conf");
    assert!(container.starts_with("/etc/nginx/conf.d/"), "{mount}");
    assert!(deploy("nginx/onelaunch.conf").exists());

    // The proxy settings the docs promise are the ones in the config.
    let conf = read(&deploy("nginx/onelaunch.conf"));
    let server = nginx_block(&conf, "server {");
    assert!(nginx_size(directive(&server, "client_max_body_size")) >= 256 * 1024 * 1024);
    assert_eq!(directive(&server, "proxy_request_buffering"), "off");
    assert!(nginx_time(directive(&server, "proxy_read_timeout")) >= 600);
    assert!(nginx_time(directive(&server, "client_body_timeout")) >= 600);
    for header in ["Host $host", "X-Forwarded-Proto $scheme"] {
        assert!(
            server.contains(&("proxy_set_header".into(), header.into())),
            "{server:?}"
        );
    }
    let sse = nginx_block(&conf, SSE_LOCATION);
    assert_eq!(directive(&sse, "proxy_buffering"), "off");
    assert!(nginx_time(directive(&sse, "proxy_read_timeout")) >= 3600);
    assert!(directive(&sse, "add_header").starts_with("X-Accel-Buffering no"));
    for needle in [
        format!("{IMAGE}:{tag}"),
        "/var/lib/onelaunch".into(),
        "8080".into(),
        "client_max_body_size 256m".into(),
        "proxy_request_buffering off".into(),
        "proxy_buffering off".into(),
        "X-Accel-Buffering".into(),
        "ONELAUNCH_PUBLIC_URL".into(),
        "X-Forwarded-Proto".into(),
        "--trust-forwarded-for".into(),
        "advisory lock".into(),
        "deploy/compose.scale.yaml".into(),
        "deploy/nginx/onelaunch.conf".into(),
    ] {
        assert!(
            docs.contains(&needle),
            "docs/deploy.md does not say {needle}"
        );
    }
}

#[test]
fn kubernetes_manifests_follow_the_kubernetes_schemas() {
    let Some(py) = python() else { return };
    let kustomization = yaml(py, &deploy("kubernetes/kustomization.yaml"));
    assert_eq!(kustomization["kind"], "Kustomization");
    let files: Vec<PathBuf> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| deploy("kubernetes").join(r.as_str().unwrap()))
        .collect();
    let (ok, out) = validate(py, "kubernetes", &files);
    assert!(ok, "{out}");
    let mut docs = Vec::new();
    for f in &files {
        docs.extend(yaml_docs(py, f));
    }
    let kinds: BTreeSet<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "Deployment",
            "Ingress",
            "PersistentVolumeClaim",
            "Secret",
            "Service"
        ])
    );
    assert_eq!(out.matches("ok ").count(), docs.len(), "{out}");
    let of = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap().clone();

    // An unknown field is an error (strict schemas).
    let bad = tempfile::tempdir().unwrap();
    let text = read(&deploy("kubernetes/deployment.yaml"))
        .replace("readOnlyRootFilesystem: true", "readOnlyRootFS: true");
    std::fs::write(bad.path().join("d.yaml"), text).unwrap();
    let (ok, out) = validate(py, "kubernetes", &[bad.path().join("d.yaml")]);
    assert!(!ok && out.contains("readOnlyRootFS"), "{out}");

    let deployment = of("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let tag = documented_tag();
    assert_eq!(c["image"], format!("{IMAGE}:{tag}").as_str());
    assert_eq!(kustomization["images"][0]["name"], IMAGE);
    assert_eq!(kustomization["images"][0]["newTag"], tag.as_str());
    assert_eq!(c["ports"][0]["name"], "http");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "server",
            "--listen",
            "0.0.0.0:8080",
            "--data",
            "/var/lib/onelaunch"
        ]
    );
    for (probe, path) in [
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], "http", "{probe}");
    }
    for sc in [&pod["securityContext"], &c["securityContext"]] {
        assert_eq!(sc["runAsUser"], 65532);
        assert_eq!(sc["runAsGroup"], 65532);
        assert_eq!(sc["runAsNonRoot"], true);
    }
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");

    // Volumes: the data dir from the claim, the key file from the Secret.
    let volume = |name: &str| {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
            .clone()
    };
    let mount = |path: &str| {
        c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == path)
            .unwrap_or_else(|| panic!("nothing mounted on {path}"))["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let pvc = of("PersistentVolumeClaim");
    assert_eq!(
        volume(&mount("/var/lib/onelaunch"))["persistentVolumeClaim"]["claimName"],
        pvc["metadata"]["name"]
    );
    let env = |name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .clone()
    };
    let key_file = env("ONELAUNCH_SECRET_KEY_FILE")["value"]
        .as_str()
        .unwrap()
        .to_string();
    let (dir, file) = key_file.rsplit_once('/').unwrap();
    let key_volume = volume(&mount(dir));
    let secret = of("Secret");
    assert_eq!(
        key_volume["secret"]["secretName"],
        secret["metadata"]["name"]
    );
    assert_eq!(key_volume["secret"]["items"][0]["path"], file);
    let key_item = key_volume["secret"]["items"][0]["key"].as_str().unwrap();
    assert!(secret["stringData"].get(key_item).is_some());
    let token_ref = &env("ONELAUNCH_INIT_TOKEN")["valueFrom"]["secretKeyRef"];
    assert_eq!(token_ref["name"], secret["metadata"]["name"]);
    assert!(secret["stringData"]
        .get(token_ref["key"].as_str().unwrap())
        .is_some());

    // Service → container port; Ingress → Service, with the proxy settings.
    let service = of("Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    for (k, v) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&deployment["spec"]["template"]["metadata"]["labels"][k], v);
    }
    let ingress = of("Ingress");
    let backend = &ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
    assert_eq!(backend["name"], service["metadata"]["name"]);
    assert_eq!(backend["port"]["name"], "http");
    let a = &ingress["metadata"]["annotations"];
    let ann = |k: &str| {
        a[format!("nginx.ingress.kubernetes.io/{k}")]
            .as_str()
            .unwrap_or_else(|| panic!("no annotation {k}"))
    };
    assert!(nginx_size(ann("proxy-body-size")) >= 256 * 1024 * 1024);
    assert_eq!(ann("proxy-request-buffering"), "off");
    assert_eq!(ann("proxy-buffering"), "off");
    assert!(ann("proxy-read-timeout").parse::<u64>().unwrap() >= 3600);
}

/// The `ONELAUNCH_*` names an example env file mentions (set or commented).
fn env_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| l.trim_start_matches(['#', ' ']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.to_string())
        .filter(|k| k.starts_with("ONELAUNCH_") && !k.contains(' '))
        .collect()
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        assert!(!runners_required(), "/usr/bin/systemd-analyze is missing");
        eprintln!("SKIPPED: /usr/bin/systemd-analyze is missing");
        return;
    }
    let unit = read(&deploy("systemd/onelaunch.service"));
    let exec = "ExecStart=/usr/local/bin/onelaunch ";
    assert_eq!(unit.matches(exec).count(), 1, "{unit}");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("onelaunch.service");
    std::fs::write(
        &copy,
        unit.replace(exec, &format!("ExecStart={} ", bin().display())),
    )
    .unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    // Unknown or malformed settings are only warnings: there must be none.
    assert!(
        !said.contains("onelaunch.service"),
        "systemd-analyze verify warns:\n{said}"
    );

    // The hardening docs/deploy.md describes.
    let set: BTreeSet<&str> = unit
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for line in [
        "DynamicUser=yes",
        "StateDirectory=onelaunch",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "LimitNOFILE=65536",
        "EnvironmentFile=/etc/onelaunch/onelaunch.env",
    ] {
        assert!(set.contains(line), "the unit lacks {line}");
    }
    // The unit's command and every variable the examples mention are real
    // server settings.
    let help = Cli::new("http://127.0.0.1:9", "")
        .run(&["server", "--help"])
        .ok()
        .stdout;
    let cmd = unit
        .lines()
        .find_map(|l| l.strip_prefix(exec))
        .unwrap()
        .to_string();
    for flag in cmd.split_whitespace().filter(|a| a.starts_with("--")) {
        assert!(help.contains(&format!("{flag} <")), "no server flag {flag}");
    }
    let mut names = env_names(&read(&deploy("systemd/onelaunch.env.example")));
    names.extend(env_names(&read(&deploy("onelaunch.env.example"))));
    names.extend(env_names(
        &read(&deploy("compose.scale.yaml")).replace(": ", "="),
    ));
    assert!(names.contains("ONELAUNCH_INIT_TOKEN"), "{names:?}");
    for name in names {
        // The log settings are read before the flags (the log filter has none).
        if name == "ONELAUNCH_LOG" || name == "ONELAUNCH_LOG_FORMAT" {
            continue;
        }
        assert!(
            help.contains(&format!("[env: {name}")),
            "{name} is not a server setting"
        );
    }
}

// ------------------------------------------------------------ through nginx

fn nginx_bin() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/sbin/nginx");
    if p.exists() {
        return Some(p);
    }
    assert!(
        !runners_required(),
        "nginx is missing: run scripts/tools/nginx.sh"
    );
    eprintln!("SKIPPED: nginx is missing; run scripts/tools/nginx.sh");
    None
}

/// nginx in the foreground on a loopback port, with deploy/nginx/onelaunch.conf
/// pointed at `backends`; stopped on drop.
struct Nginx {
    url: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Nginx {
    fn start(exe: &Path, backends: &[String]) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = read(&deploy("nginx/onelaunch.conf"));
        let upstream = "    server onelaunch:8080 max_fails=3 fail_timeout=10s;\n";
        let listen = "    listen 8080;\n";
        assert_eq!(conf.matches(upstream).count(), 1, "{conf}");
        assert_eq!(conf.matches(listen).count(), 1, "{conf}");
        let servers: String = backends
            .iter()
            .map(|b| {
                format!(
                    "    server {} max_fails=3 fail_timeout=10s;\n",
                    b.trim_start_matches("http://")
                )
            })
            .collect();
        let conf = conf
            .replace(upstream, &servers)
            .replace(listen, &format!("    listen 127.0.0.1:{port};\n"));
        let d = dir.path();
        std::fs::write(d.join("onelaunch.conf"), conf).unwrap();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let main = format!(
            "{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  log_format upstream '$request_method $uri $status $upstream_addr';\n  \
             access_log {d}/access.log upstream;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
             scgi_temp_path {d}/scgi;\n  include {d}/onelaunch.conf;\n}}\n",
            user = if root { "user root root;\n" } else { "" },
            d = d.display()
        );
        std::fs::write(d.join("nginx.conf"), main).unwrap();
        let test = Command::new(exe)
            .args(["-t", "-p"])
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .output()
            .unwrap();
        assert!(
            test.status.success(),
            "nginx -t: {}",
            String::from_utf8_lossy(&test.stderr)
        );
        let child = Command::new(exe)
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::blocking::get(format!("{url}/healthz")) {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "nginx did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { url, dir, child }
    }

    /// (method, path, status, upstream address) of every proxied request.
    fn access_log(&self) -> Vec<(String, String, u16, String)> {
        read(&self.dir.path().join("access.log"))
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (
                    f[0].to_string(),
                    f[1].to_string(),
                    f[2].parse().unwrap(),
                    f[3].to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs in to the web UI through the form; the session cookie.
fn ui_session(http: &reqwest::blocking::Client, url: &str) -> String {
    let cookie = |r: &reqwest::blocking::Response, name: &str| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {name} cookie"))
    };
    let page = http.get(format!("{url}/login")).send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csrf = cookie(&page, "ol_login");
    let r = http
        .post(format!("{url}/login"))
        .header("Cookie", format!("ol_login={csrf}"))
        .form(&[("token", TOKEN), ("csrf", &csrf), ("next", "/launches")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    cookie(&r, "ol_session")
}

/// Bytes that do not compress: `n` of a xorshift sequence.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn replicas_behind_the_documented_nginx_take_large_uploads_live_events_and_every_result() {
    let Some(exe) = nginx_bin() else { return };
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.database("deploykit");
    // As compose.scale.yaml: one shared data directory, and one key file
    // made before the first start, given to every replica.
    let shared = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let key = secrets.path().join("secret.key");
    std::fs::write(&key, hex::encode(noise(32))).unwrap();
    let replicas: Vec<TestServer> = (0..3)
        .map(|_| {
            let (url, data) = (url.clone(), shared.path().to_path_buf());
            let key = key.to_str().unwrap().to_string();
            std::thread::spawn(move || {
                TestServer::start_in(
                    Some(&data),
                    &[
                        "--database-url",
                        &url,
                        "--trust-forwarded-for",
                        "--secret-key-file",
                        &key,
                    ],
                )
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let backends: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let nginx = Nginx::start(&exe, &backends);
    let base = Cli::new(&nginx.url, TOKEN);
    let api = Api {
        url: nginx.url.clone(),
        token: TOKEN.to_string(),
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .unwrap(),
    };

    // The launch, started by the first job of a GitHub run.
    let start = base.clone().github("4242", "start");
    start
        .run(&["job-run", "start", "--launch-name", "Behind nginx"])
        .ok();
    let env = parse_env(&start.run(&["job-run", "env"]).ok().stdout);
    let lid: i64 = env["ALLURE_LAUNCH_ID"].parse().unwrap();

    // Its page's live events, through nginx: the first arrives at once.
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(None)
        .build()
        .unwrap();
    let session = ui_session(&http, &nginx.url);
    let stream = http
        .get(format!("{}/launch/{lid}/events", nginx.url))
        .header("Cookie", format!("ol_session={session}"))
        .send()
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let header = |k: &str| {
        stream
            .headers()
            .get(k)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(header("content-type").starts_with("text/event-stream"));
    assert_eq!(header("x-accel-buffering"), "no");
    let (tx, events) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: ") {
                if tx.send(format!("{event} {data}")).is_err() {
                    break;
                }
            }
        }
    });
    let wait = Duration::from_secs(120);
    let first = events.recv_timeout(wait).expect("no first event");
    assert!(first.starts_with("update {"), "{first}");

    // A 20 MB attachment (nginx's default limit is 1 MB) in one job...
    let work = tempfile::tempdir().unwrap();
    let big_dir = work.path().join("big");
    std::fs::create_dir_all(&big_dir).unwrap();
    let bytes = noise(20 * 1024 * 1024);
    std::fs::write(big_dir.join("big-attachment.bin"), &bytes).unwrap();
    std::fs::write(
        big_dir.join("big-result.json"),
        serde_json::json!({
            "uuid": "big", "historyId": "h-big", "name": "large attachment",
            "fullName": "deploy.big", "status": "passed",
            "start": 1_700_000_000_000i64, "stop": 1_700_000_000_500i64,
            "attachments": [{"name": "dump", "source": "big-attachment.bin",
                             "type": "application/octet-stream"}],
        })
        .to_string(),
    )
    .unwrap();
    let big = base
        .clone()
        .github("4242", "big")
        .env("ALLURE_LAUNCH_ID", lid)
        .env("ALLURE_JOB_RUN_ID", &env["ALLURE_JOB_RUN_ID"]);
    let big = std::thread::spawn(move || big.run(&["upload", big_dir.to_str().unwrap()]));

    // ... while four GitLab pipelines upload into the same launch, each into
    // its own job run, their requests spread over the replicas.
    let per_job = 60;
    let pipelines = ["501", "502", "503", "504"];
    let uploads: Vec<_> = pipelines
        .iter()
        .map(|p| {
            let dir = work.path().join(format!("p{p}"));
            generate_results(&dir, &format!("p{p}"), per_job);
            let cli = base.clone().gitlab(p).env("ALLURE_LAUNCH_ID", lid);
            std::thread::spawn(move || cli.run(&["upload", "--size", "10", dir.to_str().unwrap()]))
        })
        .collect();
    for u in uploads {
        u.join().unwrap().ok();
    }
    big.join().unwrap().ok();

    // The page hears about it through the proxy.
    let next = events
        .recv_timeout(wait)
        .expect("no event after the uploads");
    assert!(next.starts_with("update {"), "{next}");

    // Every result counted, once, in one launch with one job run per job.
    let total = per_job * pipelines.len() + 1;
    let results = api.results(lid);
    assert_eq!(results.len(), total);
    let uuids: BTreeSet<&str> = results
        .iter()
        .map(|r| r["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids.len(), total, "no duplicates");
    let stat = api.statistic(lid);
    let failed = (0..per_job).filter(|i| i % 4 == 0).count() * pipelines.len();
    assert_eq!(stat["failed"], failed as i64);
    assert_eq!(stat["passed"], (total - failed) as i64);
    assert_eq!(api.launches(1).len(), 1);
    let runs = api.job_runs(lid);
    assert_eq!(runs.len(), 1 + pipelines.len(), "{runs:?}");

    // The large attachment downloads byte for byte through nginx.
    let rid = results.iter().find(|r| r["uuid"] == "big").unwrap()["id"].clone();
    let atts = api.get(&format!("/api/testresult/{rid}"))["attachments"].clone();
    let att = atts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "dump")
        .unwrap_or_else(|| panic!("{atts}"))
        .clone();
    let got = api
        .http
        .get(format!(
            "{}/api/attachment/{}/content",
            nginx.url, att["id"]
        ))
        .header("Authorization", format!("api-token {TOKEN}"))
        .send()
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
    let got = got.bytes().unwrap();
    assert_eq!(got.len(), bytes.len());
    assert_eq!(
        hex::encode(Sha256::digest(&got)),
        hex::encode(Sha256::digest(&bytes))
    );

    // The uploads went through nginx to every replica, none refused.
    let log = nginx.access_log();
    let posts: Vec<_> = log.iter().filter(|(m, ..)| m == "POST").collect();
    assert!(
        posts.iter().all(|(_, _, s, _)| *s < 400),
        "refused through nginx: {posts:?}"
    );
    let used: BTreeSet<&str> = posts.iter().map(|(.., a)| a.as_str()).collect();
    let all: BTreeSet<&str> = backends
        .iter()
        .map(|b| b.trim_start_matches("http://"))
        .collect();
    assert_eq!(used, all, "{posts:?}");
    assert!(
        !shared.path().join("secret.key").exists(),
        "the replicas use the key file they are given"
    );
    drop(nginx);
    drop(replicas);
}
