//! The HTTP client shared by the provider triggers: endpoints, short error
//! bodies, transport errors.

use std::sync::OnceLock;

use super::*;

pub(crate) fn http() -> Result<&'static reqwest::Client, TriggerError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = reqwest::Client::builder()
        .timeout(TRIGGER_TIMEOUT)
        // A redirect would send the request (and its credential) to an
        // address nobody approved: a 3xx answer is a failed trigger.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(format!("onelaunch/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| TriggerError::Client(e.to_string()))?;
    Ok(CLIENT.get_or_init(|| c))
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
    if e.is_timeout() {
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
