//! GitHub: its settings (repository, workflow file, ref, token) and the
//! `workflow_dispatch` of the workflow.

use onelaunch_api as api;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::http::*;
use super::*;

/// The API of github.com.
pub(crate) const DEFAULT_URL: &str = "https://api.github.com";

/// A GitHub workflow to dispatch, with a token allowed to dispatch it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Github {
    /// API base URL (default `https://api.github.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) url: Option<String>,
    /// `owner/repo`.
    pub(crate) repository: String,
    /// Workflow file name (or id), e.g. `tests.yml`.
    pub(crate) workflow: String,
    #[serde(rename = "ref")]
    pub(crate) git_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) credential: Option<String>,
}

impl std::fmt::Debug for Github {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Github")
            .field("url", &self.url)
            .field("repository", &self.repository)
            .field("workflow", &self.workflow)
            .field("git_ref", &self.git_ref)
            .field("credential", &redacted(&self.credential))
            .finish()
    }
}

impl Github {
    pub(crate) fn validate(
        s: &api::IntegrationSettings,
        credential: Option<String>,
    ) -> ServerResult<Github> {
        let kind = "github";
        let repository = require(&s.repository, "repository", kind)?;
        let ok = repository.split('/').count() == 2
            && repository.split('/').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            });
        if !ok {
            return Err(ServerError::bad(format!(
                "field `integration.repository`: expected owner/repo, got {repository:?}"
            )));
        }
        let workflow = require(&s.workflow, "workflow", kind)?;
        let git_ref = require(&s.git_ref, "ref", kind)?;
        let url = check_url(&s.url, false, kind)?;
        let credential = require_credential(
            credential,
            "a GitHub token allowed to dispatch workflows",
            kind,
        )?;
        Ok(Github {
            url,
            repository,
            workflow,
            git_ref,
            credential: Some(credential),
        })
    }

    /// `workflow_dispatch` with the variables as inputs.
    pub(crate) async fn trigger(&self, variables: &[(String, String)]) -> Result<(), TriggerError> {
        let base = self.url.as_deref().unwrap_or(DEFAULT_URL);
        let (owner, name) = self
            .repository
            .split_once('/')
            .unwrap_or((&self.repository, ""));
        let url = endpoint(
            base,
            &[
                "repos",
                owner,
                name,
                "actions",
                "workflows",
                &self.workflow,
                "dispatches",
            ],
        )?;
        let inputs: serde_json::Map<String, Value> = variables
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let body = json!({ "ref": self.git_ref, "inputs": inputs });
        let req = http()?
            .post(url)
            .bearer_auth(self.credential.clone().unwrap_or_default())
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .json(&body);
        send("GitHub", req).await.map(|_| ())
    }
}
