//! GitLab: its settings (project, ref, pipeline trigger token) and the
//! pipeline trigger.

use onelaunch_api as api;
use serde::{Deserialize, Serialize};

use super::http::*;
use super::*;

/// gitlab.com.
pub(crate) const DEFAULT_URL: &str = "https://gitlab.com";

/// A GitLab project's pipeline, started with a pipeline trigger token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Gitlab {
    /// Base URL (default `https://gitlab.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) url: Option<String>,
    #[serde(rename = "ref")]
    pub(crate) git_ref: String,
    /// Project id (or URL-encoded path).
    pub(crate) project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) credential: Option<String>,
}

impl std::fmt::Debug for Gitlab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gitlab")
            .field("url", &self.url)
            .field("git_ref", &self.git_ref)
            .field("project", &self.project)
            .field("credential", &redacted(&self.credential))
            .finish()
    }
}

impl Gitlab {
    pub(crate) fn validate(
        s: &api::IntegrationSettings,
        credential: Option<String>,
    ) -> ServerResult<Gitlab> {
        let kind = "gitlab";
        let project = require(&s.project, "project", kind)?;
        let git_ref = require(&s.git_ref, "ref", kind)?;
        let url = check_url(&s.url, false, kind)?;
        let credential = require_credential(credential, "a pipeline trigger token", kind)?;
        Ok(Gitlab {
            url,
            git_ref,
            project,
            credential: Some(credential),
        })
    }

    /// Pipeline trigger with the variables as `variables[NAME]`.
    pub(crate) async fn trigger(&self, variables: &[(String, String)]) -> Result<(), TriggerError> {
        let base = self.url.as_deref().unwrap_or(DEFAULT_URL);
        let url = endpoint(
            base,
            &[
                "api",
                "v4",
                "projects",
                &self.project,
                "trigger",
                "pipeline",
            ],
        )?;
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("token", self.credential.as_deref().unwrap_or_default());
            form.append_pair("ref", &self.git_ref);
            for (k, v) in variables {
                form.append_pair(&format!("variables[{k}]"), v);
            }
            form.finish()
        };
        let req = http()?
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        send("GitLab", req).await.map(|_| ())
    }
}
