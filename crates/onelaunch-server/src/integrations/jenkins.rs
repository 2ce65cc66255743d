//! Jenkins: crumb, then `buildWithParameters`.

use serde_json::Value;

use super::http::*;
use crate::integrations::*;

/// Jenkins: `buildWithParameters`, after fetching a CSRF crumb when the crumb
/// issuer is enabled (404 means it is not).
pub(crate) async fn trigger_jenkins(t: &Trigger) -> Result<(), String> {
    let s = &t.settings;
    let base = s.url.clone().unwrap_or_default();
    let auth = |req: reqwest::RequestBuilder| match &s.username {
        Some(user) => req.basic_auth(user, t.credential.clone()),
        None => req,
    };
    let crumb_url = endpoint(&base, &["crumbIssuer", "api", "json"])?;
    let resp = auth(http()?.get(crumb_url))
        .send()
        .await
        .map_err(|e| transport_error("Jenkins", &e))?;
    let mut crumb: Option<(String, String)> = None;
    let mut cookies: Vec<String> = Vec::new();
    match resp.status().as_u16() {
        200 => {
            for v in resp.headers().get_all(reqwest::header::SET_COOKIE) {
                if let Some(pair) = v.to_str().ok().and_then(|c| c.split(';').next()) {
                    cookies.push(pair.trim().to_string());
                }
            }
            let v: Value = resp
                .json()
                .await
                .map_err(|e| format!("Jenkins crumb issuer answered invalid JSON: {e}"))?;
            let field = v["crumbRequestField"].as_str().unwrap_or("Jenkins-Crumb");
            let value = v["crumb"]
                .as_str()
                .ok_or("Jenkins crumb issuer answered without a `crumb`")?;
            crumb = Some((field.to_string(), value.to_string()));
        }
        404 => {}
        status => {
            let body = resp.text().await.unwrap_or_default();
            return Err(format!(
                "Jenkins crumb issuer answered HTTP {status}: {}",
                short_body(&body)
            ));
        }
    }
    let mut segments: Vec<&str> = Vec::new();
    for part in s
        .job_path
        .as_deref()
        .unwrap_or_default()
        .split('/')
        .filter(|p| !p.trim().is_empty())
    {
        segments.push("job");
        segments.push(part);
    }
    segments.push("buildWithParameters");
    let mut url = endpoint(&base, &segments)?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &t.variables {
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
