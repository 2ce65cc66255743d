//! The HTTP client shared by the provider triggers: endpoints, short error
//! bodies, transport errors.

use std::sync::OnceLock;

use crate::integrations::*;

pub(crate) fn http() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = reqwest::Client::builder()
        .timeout(TRIGGER_TIMEOUT)
        .user_agent(format!("onelaunch/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
    Ok(CLIENT.get_or_init(|| c))
}

/// `base` + path segments (each percent-encoded).
pub(crate) fn endpoint(base: &str, segments: &[&str]) -> Result<url::Url, String> {
    let mut u = url::Url::parse(base).map_err(|e| format!("invalid URL {base:?}: {e}"))?;
    u.path_segments_mut()
        .map_err(|_| format!("invalid base URL {base:?}"))?
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

pub(crate) fn transport_error(provider: &str, e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    if e.is_timeout() {
        format!(
            "{provider} did not answer within {}s",
            TRIGGER_TIMEOUT.as_secs()
        )
    } else {
        format!("cannot reach {provider}: {root}")
    }
}

/// Sends a request; any non-2xx answer becomes `"<provider> answered HTTP <status>: <body>"`.
pub(crate) async fn send(
    provider: &str,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, String> {
    let resp = req
        .send()
        .await
        .map_err(|e| transport_error(provider, &e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(format!(
        "{provider} answered HTTP {}: {}",
        status.as_u16(),
        short_body(&body)
    ))
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
