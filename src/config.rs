//! Connection settings: flags > environment (both via clap) > config file >
//! defaults.

use std::path::PathBuf;

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
}

fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("onelaunch").join("config.toml"))
}

fn load_file(global: &Global) -> Result<FileConfig> {
    let (path, explicit) = match &global.config {
        Some(p) => (p.clone(), true),
        None => match default_config_path() {
            Some(p) => (p, false),
            None => return Ok(FileConfig::default()),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileConfig::default())
        }
        Err(e) => return Err(e).with_context(|| format!("config file {}", path.display())),
    };
    toml::from_str(&text).with_context(|| {
        format!(
            "config file {}: expected TOML with keys endpoint, token, project-id",
            path.display()
        )
    })
}

/// Resolved connection settings.
pub(crate) struct Conn {
    pub(crate) client: ApiClient,
    pub(crate) endpoint: String,
    pub(crate) project_id: i64,
}

pub(crate) fn connect(global: &Global) -> Result<Conn> {
    let file = load_file(global)?;
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
    let client = ApiClient::new(config).context("cannot set up the HTTP client")?;
    Ok(Conn {
        client,
        endpoint: endpoint.trim_end_matches('/').to_string(),
        project_id,
    })
}
