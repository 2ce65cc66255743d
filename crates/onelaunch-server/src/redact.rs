//! What the request log may show. The request span (tower-http's TraceLayer)
//! records the method, the path and the query with secret-looking parameters
//! (`token`, `access_token`, `password`, … — see
//! [`onelaunch_api::is_secret_name`]) replaced by `<redacted>`; it never
//! records headers, so `Authorization` and cookies stay out of the log. It is
//! a debug span (`ONELAUNCH_LOG=info,tower_http=debug`); the request line
//! logged by default (`observe::requests`) shows the route template only,
//! never the path's values or the query.

use axum::http::Request;
use tracing::Span;

const REDACTED: &str = "<redacted>";

/// The query string with the values of secret-looking parameters replaced.
pub(crate) fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded: String = url::form_urlencoded::parse(name.as_bytes())
                .map(|(k, _)| k.into_owned())
                .next()
                .unwrap_or_default();
            if !value.is_empty() && onelaunch_api::is_secret_name(&decoded) {
                format!("{name}={REDACTED}")
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The span of one request in the request log.
pub(crate) fn request_span<B>(req: &Request<B>) -> Span {
    let uri = req.uri();
    let shown = match uri.query() {
        Some(q) => format!("{}?{}", uri.path(), redact_query(q)),
        None => uri.path().to_string(),
    };
    // The target of tower-http's own span, so `tower_http=debug` shows it.
    tracing::debug_span!(
        target: "tower_http::trace::make_span",
        "request",
        method = %req.method(),
        uri = %shown,
        version = ?req.version(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_query_values_are_redacted() {
        assert_eq!(
            redact_query("launchId=3&token=abc&access_token=x&api%5Ftoken=y&size=10"),
            "launchId=3&token=<redacted>&access_token=<redacted>&api%5Ftoken=<redacted>&size=10"
        );
        assert_eq!(redact_query("id=5"), "id=5");
        assert_eq!(redact_query("password"), "password");
    }

    #[test]
    fn the_span_shows_no_secret() {
        let req = Request::get("/api/launch/1?token=hunter2&x=1")
            .header("authorization", "api-token hunter2")
            .body(())
            .unwrap();
        // The span's fields are formatted from the request; check the part we build.
        let shown = redact_query(req.uri().query().unwrap());
        assert!(!shown.contains("hunter2"));
        let _ = request_span(&req);
    }
}
