//! Connection settings: flags > environment (both via clap) > config file >
//! defaults.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use onelaunch_client::{ApiClient, ClientConfig, Secret};
use serde::Deserialize;

use crate::cli::Global;

/// The config file. Keys mirror the long flags.
#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    endpoint: Option<String>,
    token: Option<String>,
    #[serde(alias = "project_id")]
    project_id: Option<i64>,
    /// PEM file of extra CA certificates; relative to the config file.
    #[serde(alias = "ca_cert")]
    ca_cert: Option<PathBuf>,
    insecure: Option<bool>,
}

/// TLS settings, resolved: flags > environment (both via clap) > config file.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tls {
    ca_cert: Option<PathBuf>,
    insecure: bool,
}

/// `file_dir` is the config file's directory: a relative `ca-cert` there is
/// read from beside the file, wherever the command runs.
fn tls_of(global: &Global, file: &FileConfig, file_dir: Option<&Path>) -> Tls {
    let from_file = file.ca_cert.as_ref().map(|p| match file_dir {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.clone(),
    });
    Tls {
        ca_cert: global.ca_cert.clone().or(from_file),
        insecure: global.insecure.or(file.insecure).unwrap_or(false),
    }
}

/// Printed once per process, on stderr.
fn warn_insecure() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "warning: --insecure: the server's TLS certificate is not verified; \
             anyone on the network path could read the API token and the results"
        );
    });
}

fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("onelaunch").join("config.toml"))
}

/// The config file and the directory it is in.
fn load_file(global: &Global) -> Result<(FileConfig, Option<PathBuf>)> {
    let (path, explicit) = match &global.config {
        Some(p) => (p.clone(), true),
        None => match default_config_path() {
            Some(p) => (p, false),
            None => return Ok((FileConfig::default(), None)),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((FileConfig::default(), None))
        }
        Err(e) => return Err(e).with_context(|| format!("config file {}", path.display())),
    };
    let file = toml::from_str(&text).with_context(|| {
        format!(
            "config file {}: expected TOML with keys endpoint, token, project-id, ca-cert, insecure",
            path.display()
        )
    })?;
    Ok((file, path.parent().map(Path::to_path_buf)))
}

/// Resolved connection settings.
pub(crate) struct Conn {
    pub(crate) client: ApiClient,
    pub(crate) endpoint: String,
    pub(crate) project_id: i64,
}

pub(crate) fn connect(global: &Global) -> Result<Conn> {
    let (file, file_dir) = load_file(global)?;
    let tls = tls_of(global, &file, file_dir.as_deref());
    let endpoint = global
        .endpoint
        .clone()
        .or(file.endpoint)
        .context("no server endpoint: pass --endpoint or set ALLURE_ENDPOINT")?;
    let token = global
        .token
        .clone()
        .or(file.token)
        .context("no API token: pass --token or set ALLURE_TOKEN")?;
    if token.trim().is_empty() {
        bail!("the API token is empty: set ALLURE_TOKEN");
    }
    let project_id = global.project_id.or(file.project_id).unwrap_or(1);
    let url = url::Url::parse(endpoint.trim_end_matches('/')).with_context(|| {
        format!("--endpoint {endpoint:?}: expected a URL like https://host[:port]")
    })?;
    let mut config = ClientConfig::new(url, Secret::new(token));
    config.timeout = if global.http_timeout.is_zero() {
        std::time::Duration::from_secs(1)
    } else {
        global.http_timeout
    };
    if tls.insecure {
        warn_insecure();
    }
    config.ca_cert = tls.ca_cert;
    config.insecure = tls.insecure;
    let client = ApiClient::new(config).context("cannot set up the HTTP client")?;
    Ok(Conn {
        client,
        endpoint: endpoint.trim_end_matches('/').to_string(),
        project_id,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn global(args: &[&str]) -> Global {
        let mut argv = vec!["onelaunch"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["launch", "list"]);
        crate::cli::Cli::try_parse_from(argv).unwrap().global
    }

    fn file(toml_text: &str) -> FileConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn tls_defaults_verify_with_the_system_store_only() {
        let tls = tls_of(&global(&[]), &FileConfig::default(), None);
        assert_eq!(tls, Tls::default());
    }

    #[test]
    fn tls_flags_beat_the_config_file() {
        let f = file("ca-cert = \"file-ca.pem\"\ninsecure = true\n");
        let dir = Path::new("/etc/onelaunch");
        let tls = tls_of(
            &global(&["--ca-cert", "/flag/ca.pem", "--insecure=false"]),
            &f,
            Some(dir),
        );
        assert_eq!(tls.ca_cert.as_deref(), Some(Path::new("/flag/ca.pem")));
        assert!(!tls.insecure, "an explicit --insecure=false beats the file");
        let tls = tls_of(&global(&["--insecure"]), &FileConfig::default(), None);
        assert!(tls.insecure, "a bare --insecure means true");
    }

    #[test]
    fn tls_config_file_applies_when_no_flag_is_given() {
        let f = file("ca_cert = \"certs/ca.pem\"\ninsecure = true\n");
        let tls = tls_of(&global(&[]), &f, Some(Path::new("/etc/onelaunch")));
        assert_eq!(
            tls.ca_cert.as_deref(),
            Some(Path::new("/etc/onelaunch/certs/ca.pem")),
            "relative to the config file"
        );
        assert!(tls.insecure);
        let f = file("ca-cert = \"/abs/ca.pem\"\n");
        let tls = tls_of(&global(&[]), &f, Some(Path::new("/etc/onelaunch")));
        assert_eq!(tls.ca_cert.as_deref(), Some(Path::new("/abs/ca.pem")));
    }

    #[test]
    fn insecure_takes_the_usual_boolean_spellings_and_not_the_next_word() {
        for (arg, want) in [
            ("--insecure=1", true),
            ("--insecure=yes", true),
            ("--insecure=0", false),
            ("--insecure=off", false),
        ] {
            assert_eq!(global(&[arg]).insecure, Some(want), "{arg}");
        }
        // `--insecure launch list`: `launch` is the subcommand, not a value.
        assert_eq!(global(&["--insecure"]).insecure, Some(true));
        assert!(crate::cli::Cli::try_parse_from([
            "onelaunch",
            "--insecure=maybe",
            "launch",
            "list"
        ])
        .is_err());
    }
}
