//! GitHub: `workflow_dispatch` of a workflow file.

use serde_json::{json, Value};

use super::http::*;
use crate::integrations::*;

/// GitHub: `workflow_dispatch` with the variables as inputs.
pub(crate) async fn trigger_github(t: &Trigger) -> Result<(), String> {
    let s = &t.settings;
    let base = s.url.as_deref().unwrap_or("https://api.github.com");
    let repo = s.repository.clone().unwrap_or_default();
    let (owner, name) = repo.split_once('/').unwrap_or((&repo, ""));
    let url = endpoint(
        base,
        &[
            "repos",
            owner,
            name,
            "actions",
            "workflows",
            s.workflow.as_deref().unwrap_or_default(),
            "dispatches",
        ],
    )?;
    let inputs: serde_json::Map<String, Value> = t
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let body = json!({ "ref": s.git_ref.clone().unwrap_or_default(), "inputs": inputs });
    let req = http()?
        .post(url)
        .bearer_auth(t.credential.clone().unwrap_or_default())
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .json(&body);
    send("GitHub", req).await.map(|_| ())
}
