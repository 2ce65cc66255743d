//! Jenkins: its settings (base URL, job path, optional user and API token)
//! and the trigger: crumb, then `buildWithParameters`.

use onelaunch_api as api;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::*;
use super::*;

/// A Jenkins job, optionally with a user and that user's API token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Jenkins {
    pub(crate) url: String,
    /// Folder/job names separated by `/` (e.g. `team/api-tests`).
    pub(crate) job_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) credential: Option<String>,
}

impl std::fmt::Debug for Jenkins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jenkins")
            .field("url", &self.url)
            .field("job_path", &self.job_path)
            .field("username", &self.username)
            .field("credential", &redacted(&self.credential))
            .finish()
    }
}

impl Jenkins {
    pub(crate) fn validate(
        s: &api::IntegrationSettings,
        credential: Option<String>,
    ) -> ServerResult<Jenkins> {
        let kind = "jenkins";
        let url = check_url(&s.url, true, kind)?.unwrap_or_default();
        let path = require(&s.job_path, "jobPath", kind)?;
        if path.split('/').all(|p| p.trim().is_empty()) {
            return Err(ServerError::bad(
                "field `integration.jobPath`: expected folder/job names separated by /",
            ));
        }
        let username = opt_trim(&s.username);
        let credential = match username {
            Some(_) => Some(require_credential(
                credential,
                "the Jenkins user's API token",
                kind,
            )?),
            None => credential,
        };
        Ok(Jenkins {
            url,
            job_path: path.trim_matches('/').to_string(),
            username,
            credential,
        })
    }

    /// `buildWithParameters`, after fetching a CSRF crumb when the crumb
    /// issuer is enabled (404 means it is not).
    pub(crate) async fn trigger(&self, variables: &[(String, String)]) -> Result<(), TriggerError> {
        let base = self.url.as_str();
        let auth = |req: reqwest::RequestBuilder| match &self.username {
            Some(user) => req.basic_auth(user, self.credential.clone()),
            None => req,
        };
        let crumb_url = endpoint(base, &["crumbIssuer", "api", "json"])?;
        let resp = auth(http()?.get(crumb_url))
            .send()
            .await
            .map_err(|e| transport_error("Jenkins", &e))?;
        let issuer = "Jenkins crumb issuer";
        let mut crumb: Option<(String, String)> = None;
        let mut cookies: Vec<String> = Vec::new();
        match resp.status().as_u16() {
            200 => {
                for v in resp.headers().get_all(reqwest::header::SET_COOKIE) {
                    if let Some(pair) = v.to_str().ok().and_then(|c| c.split(';').next()) {
                        cookies.push(pair.trim().to_string());
                    }
                }
                let v: Value = resp.json().await.map_err(|e| TriggerError::BadAnswer {
                    provider: issuer,
                    problem: format!("invalid JSON: {e}"),
                })?;
                let field = v["crumbRequestField"].as_str().unwrap_or("Jenkins-Crumb");
                let value = v["crumb"].as_str().ok_or_else(|| TriggerError::BadAnswer {
                    provider: issuer,
                    problem: "without a `crumb`".into(),
                })?;
                crumb = Some((field.to_string(), value.to_string()));
            }
            404 => {}
            status => {
                let body = resp.text().await.unwrap_or_default();
                return Err(TriggerError::Rejected {
                    provider: issuer,
                    status,
                    body: short_body(&body),
                });
            }
        }
        let mut segments: Vec<&str> = Vec::new();
        for part in self.job_path.split('/').filter(|p| !p.trim().is_empty()) {
            segments.push("job");
            segments.push(part);
        }
        segments.push("buildWithParameters");
        let mut url = endpoint(base, &segments)?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in variables {
                q.append_pair(k, v);
            }
        }
        let mut req = auth(http()?.post(url));
        if let Some((field, value)) = crumb {
            req = req.header(field, value);
        }
        if !cookies.is_empty() {
            req = req.header(reqwest::header::COOKIE, cookies.join("; "));
        }
        send("Jenkins", req).await.map(|_| ())
    }
}
