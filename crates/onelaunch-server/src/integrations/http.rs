//! The HTTP client shared by the provider triggers: endpoints, short error
//! bodies, transport errors.
//!
//! It trusts what the CLI trusts (the same [`onelaunch_client::trust_roots`]):
//! the roots built into reqwest, the operating system's store (or
//! `SSL_CERT_FILE`/`SSL_CERT_DIR`) and the server's `--ca-cert` file.

use std::path::Path;
use std::sync::RwLock;

use super::*;

/// The client of the triggers, built by [`trust`] when the server starts
/// (one process serves one configuration; the last one set is used).
static CLIENT: RwLock<Option<reqwest::Client>> = RwLock::new(None);

fn build(ca_cert: Option<&Path>) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .timeout(TRIGGER_TIMEOUT)
        // A redirect would send the request (and its credential) to an
        // address nobody approved: a 3xx answer is a failed trigger.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(format!("onelaunch/{}", env!("CARGO_PKG_VERSION")));
    onelaunch_client::trust_roots(builder, ca_cert)
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| format!("cannot build the HTTP client of the integrations: {e}"))
}

/// Sets up the triggers' client with the CA certificates of `ca_cert` (a
/// server setting): an unusable file stops the server at start, naming it.
pub(crate) fn trust(ca_cert: Option<&Path>) -> Result<(), String> {
    let client = build(ca_cert)?;
    *CLIENT.write().unwrap_or_else(|p| p.into_inner()) = Some(client);
    Ok(())
}

pub(crate) fn http() -> Result<reqwest::Client, TriggerError> {
    if let Some(c) = CLIENT.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
        return Ok(c.clone());
    }
    let c = build(None).map_err(TriggerError::Client)?;
    Ok(CLIENT
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert(c)
        .clone())
}

/// `base` + path segments (each percent-encoded).
pub(crate) fn endpoint(base: &str, segments: &[&str]) -> Result<url::Url, TriggerError> {
    let mut u = url::Url::parse(base).map_err(|e| TriggerError::InvalidEndpoint {
        base: base.to_string(),
        reason: e.to_string(),
    })?;
    u.path_segments_mut()
        .map_err(|_| TriggerError::NotABaseUrl(base.to_string()))?
        .pop_if_empty()
        .extend(segments);
    Ok(u)
}

pub(crate) fn short_body(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "(empty body)".into();
    }
    match flat.char_indices().nth(ERROR_BODY_CHARS) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

pub(crate) fn transport_error(provider: &'static str, e: &reqwest::Error) -> TriggerError {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    if let Some(reason) = onelaunch_client::certificate_problem(e) {
        let server = e.url().map_or_else(
            || "?".to_string(),
            |u| {
                let mut s = format!("{}://{}", u.scheme(), u.host_str().unwrap_or(""));
                if let Some(port) = u.port() {
                    s.push_str(&format!(":{port}"));
                }
                s
            },
        );
        TriggerError::Certificate {
            provider,
            server,
            reason,
        }
    } else if e.is_timeout() {
        TriggerError::Timeout {
            provider,
            secs: TRIGGER_TIMEOUT.as_secs(),
        }
    } else {
        TriggerError::Transport {
            provider,
            cause: root.to_string(),
        }
    }
}

/// Sends a request; any non-2xx answer becomes [`TriggerError::Rejected`]
/// (`"<provider> answered HTTP <status>: <body>"`).
pub(crate) async fn send(
    provider: &'static str,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, TriggerError> {
    let resp = req
        .send()
        .await
        .map_err(|e| transport_error(provider, &e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(TriggerError::Rejected {
        provider,
        status: status.as_u16(),
        body: short_body(&body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bodies() {
        assert_eq!(short_body("  a \n b "), "a b");
        assert_eq!(short_body(""), "(empty body)");
        assert!(short_body(&"x".repeat(1000)).ends_with('…'));
    }
}
