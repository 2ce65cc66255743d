//! Build-server integrations: the typed [`Integration`] a job is configured
//! with (one variant per provider module: `github`, `gitlab`, `jenkins`,
//! `command`), its validation from the loose request settings, and the
//! dispatch of a trigger to the provider.

mod command;
mod github;
mod gitlab;
mod http;
mod jenkins;
mod policy;

use std::time::Duration;

use onelaunch_api::{self as api, Id};
use serde::{Deserialize, Serialize};

pub(crate) use self::http::trust;
pub(crate) use self::policy::{refused_var_name, url_approved, AllowedHosts};
pub(crate) use self::{command::Command, github::Github, gitlab::Gitlab, jenkins::Jenkins};
use crate::db::Db;
use crate::error::{ServerError, ServerResult};

/// How long one provider request may take.
pub(crate) const TRIGGER_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest provider answer kept in a job run's error message.
pub(crate) const ERROR_BODY_CHARS: usize = 300;

/// Stderr lines of a failed `command` kept in the error message.
pub(crate) const COMMAND_TAIL_LINES: usize = 20;

/// A job's build-server integration, validated. Serialises exactly like
/// [`api::IntegrationSettings`] of its type (`{"type":"github","url":…,
/// "repository":…,"workflow":…,"ref":…,"credential":…}`); the credential is
/// stored sealed apart from the settings (see [`Integration::settings_json`])
/// and `Debug` never shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum Integration {
    Github(Github),
    Gitlab(Gitlab),
    Jenkins(Jenkins),
    Command(Command),
}

/// The type asked for in request settings, as compared and stored.
pub(crate) fn requested_kind(s: &api::IntegrationSettings) -> String {
    s.kind.trim().to_ascii_lowercase()
}

impl Integration {
    /// Validates request settings: only the fields of the type are kept,
    /// normalised. A credential left out of an update keeps the one of
    /// `current` only when the credential's target is unchanged (see
    /// [`Integration::target`]): a stored credential is never sent anywhere
    /// else than where it was given for. Errors name the field
    /// (`integration.<field>`).
    pub(crate) fn validate(
        s: &api::IntegrationSettings,
        current: Option<&Integration>,
    ) -> ServerResult<Integration> {
        let kind = requested_kind(s);
        let build = |credential: Option<String>| -> ServerResult<Integration> {
            Ok(match kind.as_str() {
                "github" => Integration::Github(Github::validate(s, credential)?),
                "gitlab" => Integration::Gitlab(Gitlab::validate(s, credential)?),
                "jenkins" => Integration::Jenkins(Jenkins::validate(s, credential)?),
                "command" => Integration::Command(Command::validate(s, credential)?),
                _ => {
                    return Err(ServerError::bad(format!(
                    "field `integration.type`: expected github, gitlab, jenkins or command, got {:?}",
                    s.kind
                )))
                }
            })
        };
        if let Some(given) = opt_trim(&s.credential) {
            return build(Some(given));
        }
        let Some((current, kept)) = current
            .filter(|c| c.kind() == kind)
            .and_then(|c| c.credential().map(|k| (c, k.to_string())))
        else {
            return build(None);
        };
        let next = build(Some(kept))?;
        match next.target_change(current) {
            None => Ok(next),
            Some(field) => build(None).map_err(|e| match e {
                ServerError::BadRequest(m) => ServerError::BadRequest(format!(
                    "{m}: the stored credential was given for another target \
                     (`integration.{field}` changed) and is never sent to a new one; \
                     give the credential again in the same request"
                )),
                e => e,
            }),
        }
    }

    /// The provider URL given in the settings (`None`: GitHub's or GitLab's
    /// public API, or a `command`).
    pub(crate) fn url(&self) -> Option<&str> {
        match self {
            Integration::Github(s) => s.url.as_deref(),
            Integration::Gitlab(s) => s.url.as_deref(),
            Integration::Jenkins(s) => Some(&s.url),
            Integration::Command(_) => None,
        }
    }

    /// Where the credential goes: the provider's base URL (default hosts
    /// filled in) and the repository, project or job it was given for, each
    /// with its field name. The workflow and the ref are not part of it: a
    /// credential for a repository is valid for its workflows and branches, and
    /// changing them does not send it anywhere else. A `command`'s credential
    /// (its `ALLURE_TOKEN`) stays with the job: only an admin sets commands.
    fn target(&self) -> Vec<(&'static str, &str)> {
        match self {
            Integration::Github(s) => vec![
                ("url", s.url.as_deref().unwrap_or(github::DEFAULT_URL)),
                ("repository", &s.repository),
            ],
            Integration::Gitlab(s) => vec![
                ("url", s.url.as_deref().unwrap_or(gitlab::DEFAULT_URL)),
                ("project", &s.project),
            ],
            Integration::Jenkins(s) => vec![("url", &s.url), ("jobPath", &s.job_path)],
            Integration::Command(_) => vec![],
        }
    }

    /// The first target field that differs from `other`'s (the type counts).
    fn target_change(&self, other: &Integration) -> Option<&'static str> {
        if self.kind() != other.kind() {
            return Some("type");
        }
        self.target()
            .into_iter()
            .zip(other.target())
            .find(|(a, b)| a.1 != b.1)
            .map(|(a, _)| a.0)
    }

    /// `github`, `gitlab`, `jenkins` or `command`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Integration::Github(_) => "github",
            Integration::Gitlab(_) => "gitlab",
            Integration::Jenkins(_) => "jenkins",
            Integration::Command(_) => "command",
        }
    }

    pub(crate) fn credential(&self) -> Option<&str> {
        match self {
            Integration::Github(s) => s.credential.as_deref(),
            Integration::Gitlab(s) => s.credential.as_deref(),
            Integration::Jenkins(s) => s.credential.as_deref(),
            Integration::Command(s) => s.credential.as_deref(),
        }
    }

    /// The same integration with `credential` (read back from its sealed column).
    pub(crate) fn with_credential(mut self, credential: Option<String>) -> Integration {
        match &mut self {
            Integration::Github(s) => s.credential = credential,
            Integration::Gitlab(s) => s.credential = credential,
            Integration::Jenkins(s) => s.credential = credential,
            Integration::Command(s) => s.credential = credential,
        }
        self
    }

    /// The settings as stored: the JSON of the type's fields, without the
    /// credential (which is stored sealed).
    pub(crate) fn settings_json(&self) -> String {
        serde_json::to_string(&self.clone().with_credential(None)).unwrap_or_else(|_| "{}".into())
    }

    /// Stored settings back; `None` when they do not describe an integration.
    pub(crate) fn from_settings_json(json: &str) -> Option<Integration> {
        serde_json::from_str(json).ok()
    }

    /// As shown: the settings, and whether a credential is stored (never the
    /// credential itself).
    pub(crate) fn to_dto(&self) -> api::IntegrationDto {
        let mut dto = api::IntegrationDto {
            kind: self.kind().to_string(),
            has_credential: self.credential().is_some(),
            ..Default::default()
        };
        match self {
            Integration::Github(s) => {
                dto.url = s.url.clone();
                dto.repository = Some(s.repository.clone());
                dto.workflow = Some(s.workflow.clone());
                dto.git_ref = Some(s.git_ref.clone());
            }
            Integration::Gitlab(s) => {
                dto.url = s.url.clone();
                dto.git_ref = Some(s.git_ref.clone());
                dto.project = Some(s.project.clone());
            }
            Integration::Jenkins(s) => {
                dto.url = Some(s.url.clone());
                dto.job_path = Some(s.job_path.clone());
                dto.username = s.username.clone();
            }
            Integration::Command(s) => dto.command = Some(s.command.clone()),
        }
        dto
    }
}

/// Why a trigger failed. Its text is what the job run's error message says.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TriggerError {
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("invalid URL {base:?}: {reason}")]
    InvalidEndpoint { base: String, reason: String },
    #[error("invalid base URL {0:?}")]
    NotABaseUrl(String),
    #[error("{provider} did not answer within {secs}s")]
    Timeout { provider: &'static str, secs: u64 },
    /// The provider's TLS certificate is not trusted: its own message, not
    /// "cannot reach", since retrying cannot help.
    #[error("the TLS certificate of {provider} at {server} is not trusted: {reason}; trust the CA that signed it with `onelaunch server --ca-cert FILE` (ONELAUNCH_CA_CERT), the system trust store, or SSL_CERT_FILE/SSL_CERT_DIR; nothing was sent")]
    Certificate {
        provider: &'static str,
        server: String,
        reason: String,
    },
    #[error("cannot reach {provider}: {cause}")]
    Transport {
        provider: &'static str,
        cause: String,
    },
    /// A non-2xx answer; `body` is already shortened.
    #[error("{provider} answered HTTP {status}: {body}")]
    Rejected {
        provider: &'static str,
        status: u16,
        body: String,
    },
    /// A 2xx answer the trigger cannot use.
    #[error("{provider} answered {problem}")]
    BadAnswer {
        provider: &'static str,
        problem: String,
    },
    /// The URL was not set by an admin and its host is not allowed.
    #[error("the integration URL's host {host:?} is not approved by an admin: an admin sets the URL, or allows the host with `onelaunch server --allow-integration-host`; nothing was sent")]
    NotApproved { host: String },
    #[error("cannot start the command: {0}")]
    Spawn(#[from] std::io::Error),
}

impl TriggerError {
    /// Hides `secret` wherever a provider may have echoed it.
    fn redact(self, secret: &str) -> TriggerError {
        let r = |s: String| s.replace(secret, "<redacted>");
        match self {
            TriggerError::Client(m) => TriggerError::Client(r(m)),
            TriggerError::InvalidEndpoint { base, reason } => TriggerError::InvalidEndpoint {
                base: r(base),
                reason: r(reason),
            },
            TriggerError::NotABaseUrl(base) => TriggerError::NotABaseUrl(r(base)),
            TriggerError::Certificate {
                provider,
                server,
                reason,
            } => TriggerError::Certificate {
                provider,
                server: r(server),
                reason: r(reason),
            },
            TriggerError::Transport { provider, cause } => TriggerError::Transport {
                provider,
                cause: r(cause),
            },
            TriggerError::Rejected {
                provider,
                status,
                body,
            } => TriggerError::Rejected {
                provider,
                status,
                body: r(body),
            },
            TriggerError::BadAnswer { provider, problem } => TriggerError::BadAnswer {
                provider,
                problem: r(problem),
            },
            e @ (TriggerError::Timeout { .. }
            | TriggerError::Spawn(_)
            | TriggerError::NotApproved { .. }) => e,
        }
    }
}

/// A job run to trigger once the run is stored.
pub(crate) struct Trigger {
    pub(crate) job_run_id: Id,
    pub(crate) launch_id: Id,
    pub(crate) project_id: Id,
    pub(crate) integration: Integration,
    pub(crate) variables: Vec<(String, String)>,
    /// Whether the provider URL is approved ([`url_approved`]); nothing is
    /// sent to one that is not.
    pub(crate) url_approved: bool,
}

/// Triggers a job run on its build server. A `command` is started detached and
/// records its own failure on the job run (`db`).
pub(crate) async fn trigger(db: &Db, t: Trigger) -> Result<(), TriggerError> {
    let provider = t.integration.kind();
    let outcome = dispatch(db, t).await;
    crate::metrics::trigger(provider, &outcome);
    outcome
}

async fn dispatch(db: &Db, t: Trigger) -> Result<(), TriggerError> {
    if !t.url_approved {
        let url = t.integration.url().unwrap_or_default();
        return Err(TriggerError::NotApproved {
            host: policy::url_host(url).unwrap_or_else(|| url.to_string()),
        });
    }
    let secret = t
        .integration
        .credential()
        .filter(|c| c.len() >= 4)
        .map(str::to_string);
    let outcome = match &t.integration {
        Integration::Github(s) => s.trigger(&t.variables).await,
        Integration::Gitlab(s) => s.trigger(&t.variables).await,
        Integration::Jenkins(s) => s.trigger(&t.variables).await,
        Integration::Command(s) => s.spawn(db.clone(), &t),
    };
    // A provider may echo what it was sent: never let the credential through.
    outcome.map_err(|e| match &secret {
        Some(s) => e.redact(s),
        None => e,
    })
}

/// A trimmed, non-empty setting, cut to 16 KiB.
pub(crate) fn opt_trim(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| crate::db::clip(v, 16 * 1024))
}

/// A required setting of a `kind` integration.
pub(crate) fn require(s: &Option<String>, field: &str, kind: &str) -> ServerResult<String> {
    opt_trim(s).ok_or_else(|| {
        ServerError::bad(format!(
            "field `integration.{field}` is required for a {kind} integration"
        ))
    })
}

/// The credential a `kind` integration cannot work without (`what` it is).
pub(crate) fn require_credential(
    credential: Option<String>,
    what: &str,
    kind: &str,
) -> ServerResult<String> {
    credential.ok_or_else(|| {
        ServerError::bad(format!(
            "field `integration.credential` ({what}) is required for a {kind} integration"
        ))
    })
}

/// An http(s) base URL, without its trailing `/`.
pub(crate) fn check_url(
    url: &Option<String>,
    required: bool,
    kind: &str,
) -> ServerResult<Option<String>> {
    match opt_trim(url) {
        None if required => Err(ServerError::bad(format!(
            "field `integration.url` is required for a {kind} integration"
        ))),
        None => Ok(None),
        Some(u) => match url::Url::parse(&u) {
            Ok(p) if matches!(p.scheme(), "http" | "https") && !p.cannot_be_a_base() => {
                Ok(Some(u.trim_end_matches('/').to_string()))
            }
            _ => Err(ServerError::bad(format!(
                "field `integration.url`: expected an http(s) base URL, got {u:?}"
            ))),
        },
    }
}

/// Debug text of a credential: only whether there is one.
fn redacted(credential: &Option<String>) -> Option<&'static str> {
    credential.as_ref().map(|_| "<redacted>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(v: serde_json::Value) -> api::IntegrationSettings {
        serde_json::from_value(v).unwrap()
    }

    /// Validated, the typed integration serialises like the request settings
    /// of its type, and reads back the same.
    #[test]
    fn same_json_shape_as_the_request_settings() {
        for v in [
            serde_json::json!({"type": "github", "url": "https://gh.example", "repository": "o/r",
                "workflow": "t.yml", "ref": "main", "credential": "ghp_x"}),
            serde_json::json!({"type": "github", "repository": "o/r", "workflow": "t.yml",
                "ref": "main", "credential": "ghp_x"}),
            serde_json::json!({"type": "gitlab", "url": "https://gl.example", "ref": "main",
                "project": "12", "credential": "glptt"}),
            serde_json::json!({"type": "jenkins", "url": "https://ci.example", "jobPath": "a/b",
                "username": "bot", "credential": "tok"}),
            serde_json::json!({"type": "jenkins", "url": "https://ci.example", "jobPath": "a"}),
            serde_json::json!({"type": "command", "command": "make test", "credential": "t"}),
            serde_json::json!({"type": "command", "command": "make test"}),
        ] {
            let s = settings(v.clone());
            let i = Integration::validate(&s, None).unwrap();
            assert_eq!(serde_json::to_value(&i).unwrap(), v);
            assert_eq!(
                serde_json::to_string(&i).unwrap(),
                serde_json::to_string(&s).unwrap()
            );
            let mut stored = s.clone();
            stored.credential = None;
            assert_eq!(i.settings_json(), serde_json::to_string(&stored).unwrap());
            let back = Integration::from_settings_json(&i.settings_json())
                .unwrap()
                .with_credential(s.credential.clone());
            assert_eq!(back, i);
        }
    }

    #[test]
    fn errors_name_the_field() {
        let err = |v: serde_json::Value| {
            Integration::validate(&settings(v), None)
                .unwrap_err()
                .to_string()
        };
        assert!(err(serde_json::json!({"type": "teamcity"}))
            .contains("field `integration.type`: expected github, gitlab, jenkins or command, got \"teamcity\""));
        assert!(
            err(serde_json::json!({"type": "github", "workflow": "w", "ref": "m"}))
                .contains("field `integration.repository` is required for a github integration")
        );
        assert!(err(serde_json::json!({"type": "GitLab", "project": "1", "ref": "m"})).contains(
            "field `integration.credential` (a pipeline trigger token) is required for a gitlab integration"
        ));
        assert!(
            err(serde_json::json!({"type": "jenkins", "url": "ftp://x", "jobPath": "a"}))
                .contains("field `integration.url`: expected an http(s) base URL")
        );
    }

    #[test]
    fn an_update_of_the_same_target_keeps_the_credential() {
        let current = Integration::validate(
            &settings(serde_json::json!({"type": "gitlab", "project": "1", "ref": "m", "credential": "old1"})),
            None,
        )
        .unwrap();
        let same =
            settings(serde_json::json!({"type": "gitlab", "project": "1", "ref": "release"}));
        let kept = Integration::validate(&same, Some(&current)).unwrap();
        assert_eq!(kept.credential(), Some("old1"));
        let other = settings(serde_json::json!({"type": "command", "command": "true"}));
        let dropped = Integration::validate(&other, Some(&current)).unwrap();
        assert_eq!(dropped.credential(), None);
    }

    /// A stored credential is never carried to another URL, repository,
    /// project or job path: the request must give it again.
    #[test]
    fn a_new_target_needs_the_credential_again() {
        let err = |current: serde_json::Value, next: serde_json::Value| {
            let current = Integration::validate(&settings(current), None).unwrap();
            Integration::validate(&settings(next), Some(&current))
                .unwrap_err()
                .to_string()
        };
        let gh = serde_json::json!({"type": "github", "url": "https://ghe.example/api/v3",
            "repository": "o/r", "workflow": "w", "ref": "m", "credential": "ghp_1"});
        for (field, next) in [
            (
                "url",
                serde_json::json!({"type": "github", "url": "http://127.0.0.1:9",
                "repository": "o/r", "workflow": "w", "ref": "m"}),
            ),
            (
                "url",
                serde_json::json!({"type": "github", "repository": "o/r", "workflow": "w", "ref": "m"}),
            ),
            (
                "repository",
                serde_json::json!({"type": "github", "url": "https://ghe.example/api/v3",
                "repository": "o/other", "workflow": "w", "ref": "m"}),
            ),
        ] {
            let e = err(gh.clone(), next);
            assert!(e.contains("field `integration.credential`"), "{e}");
            assert!(
                e.contains(&format!("(`integration.{field}` changed)")),
                "{e}"
            );
        }
        let e = err(
            serde_json::json!({"type": "jenkins", "url": "https://ci.example", "jobPath": "a",
                "username": "bot", "credential": "tok1"}),
            serde_json::json!({"type": "jenkins", "url": "https://ci.example", "jobPath": "b",
                "username": "bot"}),
        );
        assert!(e.contains("(`integration.jobPath` changed)"), "{e}");
        // Jenkins without a user sends no credential: it is dropped, not kept.
        let current = Integration::validate(
            &settings(
                serde_json::json!({"type": "jenkins", "url": "https://ci.example",
                "jobPath": "a", "credential": "tok1"}),
            ),
            None,
        )
        .unwrap();
        let moved = Integration::validate(
            &settings(serde_json::json!({"type": "jenkins", "url": "http://evil.example", "jobPath": "a"})),
            Some(&current),
        )
        .unwrap();
        assert_eq!(moved.credential(), None);
        // The workflow and the ref keep it; a new credential replaces it anywhere.
        let current = Integration::validate(&settings(gh.clone()), None).unwrap();
        let kept = Integration::validate(
            &settings(
                serde_json::json!({"type": "github", "url": "https://ghe.example/api/v3",
                "repository": "o/r", "workflow": "other.yml", "ref": "dev"}),
            ),
            Some(&current),
        )
        .unwrap();
        assert_eq!(kept.credential(), Some("ghp_1"));
        let given = Integration::validate(
            &settings(
                serde_json::json!({"type": "github", "url": "http://127.0.0.1:9",
                "repository": "o/r", "workflow": "w", "ref": "m", "credential": "mine"}),
            ),
            Some(&current),
        )
        .unwrap();
        assert_eq!(given.credential(), Some("mine"));
    }

    #[test]
    fn debug_redacts_the_credential() {
        let i = Integration::validate(
            &settings(
                serde_json::json!({"type": "github", "repository": "o/r", "workflow": "w",
                "ref": "m", "credential": "ghp_secret_value"}),
            ),
            None,
        )
        .unwrap();
        assert!(!format!("{i:?}").contains("ghp_secret_value"));
        assert!(format!("{i:?}").contains("<redacted>"));
    }

    #[test]
    fn trigger_errors_read_as_before_and_hide_the_credential() {
        let e = TriggerError::Rejected {
            provider: "GitHub",
            status: 401,
            body: "bad token ghp_secret".into(),
        };
        assert_eq!(
            e.to_string(),
            "GitHub answered HTTP 401: bad token ghp_secret"
        );
        assert_eq!(
            e.redact("ghp_secret").to_string(),
            "GitHub answered HTTP 401: bad token <redacted>"
        );
        let e = TriggerError::Timeout {
            provider: "Jenkins",
            secs: 20,
        };
        assert_eq!(e.to_string(), "Jenkins did not answer within 20s");
    }
}
