//! GitLab: pipeline trigger.

use super::http::*;
use crate::integrations::*;

/// GitLab: pipeline trigger with the variables as `variables[NAME]`.
pub(crate) async fn trigger_gitlab(t: &Trigger) -> Result<(), String> {
    let s = &t.settings;
    let base = s.url.as_deref().unwrap_or("https://gitlab.com");
    let url = endpoint(
        base,
        &[
            "api",
            "v4",
            "projects",
            s.project.as_deref().unwrap_or_default(),
            "trigger",
            "pipeline",
        ],
    )?;
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", t.credential.as_deref().unwrap_or_default());
        form.append_pair("ref", s.git_ref.as_deref().unwrap_or_default());
        for (k, v) in &t.variables {
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
