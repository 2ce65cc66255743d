//! One log line and one metrics sample per request. The line (target
//! `onelaunch_server::request`) carries the method, the matched route
//! template (never the raw path, so no id or query value of the URL is in
//! it), the status, the latency in milliseconds, the request id, and the
//! project and launch ids when the request names them (path or query). It
//! never carries a header, so no `Authorization`, cookie or token.
//!
//! The request id is the client's (or proxy's) `X-Request-Id` when it is a
//! short plain word, else a new random one; the response carries it back.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;

pub(crate) const REQUEST_ID: &str = "x-request-id";

/// The label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// Probes and scrapes: logged at `debug` when they succeed, so a load
/// balancer's probe every few seconds does not fill the log.
const QUIET: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// The middleware (`axum::middleware::from_fn`), applied to every route.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let (project_id, launch_id) = named_ids(route.as_deref(), req.uri().path(), req.uri().query());
    let request_id = request_id(req.headers());
    let mut res = next.run(req).await;
    let elapsed = start.elapsed();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    let route = route.as_deref().unwrap_or(UNMATCHED);
    let status = res.status().as_u16();
    crate::metrics::http_request(route, method, status, elapsed.as_secs_f64());
    let latency_ms = elapsed.as_micros() as f64 / 1000.0;
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                target: "onelaunch_server::request",
                $level,
                method = %method,
                route = %route,
                status,
                latency_ms,
                request_id = %request_id,
                project_id,
                launch_id,
                "request"
            )
        };
    }
    if status >= 500 {
        line!(tracing::Level::WARN);
    } else if QUIET.contains(&route) {
        line!(tracing::Level::DEBUG);
    } else {
        line!(tracing::Level::INFO);
    }
    res
}

/// The method as a label: the standard ones, else `other` (labels stay few).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The client's request id when it is 1 to 64 characters of `[A-Za-z0-9._:-]`,
/// else a new one (16 hexadecimal digits).
fn request_id(headers: &HeaderMap) -> String {
    let given = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
        });
    match given {
        Some(v) => v.to_string(),
        None => format!("{:016x}", rand::random::<u64>()),
    }
}

/// The project and launch a request names: `/project/{id}…` and
/// `/launch/{id}…` in the route, else `projectId` and `launchId` in the
/// query. Only numbers are taken.
fn named_ids(route: Option<&str>, path: &str, query: Option<&str>) -> (Option<i64>, Option<i64>) {
    let (mut project, mut launch) = (None, None);
    if let Some(route) = route {
        let template: Vec<&str> = route.split('/').collect();
        let actual: Vec<&str> = path.split('/').collect();
        if template.len() == actual.len() {
            for i in 1..template.len() {
                if template[i] != "{id}" {
                    continue;
                }
                let id = actual[i].parse::<i64>().ok();
                match template[i - 1] {
                    "project" => project = project.or(id),
                    "launch" => launch = launch.or(id),
                    _ => {}
                }
            }
        }
    }
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "projectId" if project.is_none() => project = v.parse().ok(),
            "launchId" if launch.is_none() => launch = v.parse().ok(),
            _ => {}
        }
    }
    (project, launch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_route_and_the_query() {
        assert_eq!(
            named_ids(Some("/api/launch/{id}/close"), "/api/launch/42/close", None),
            (None, Some(42))
        );
        assert_eq!(
            named_ids(Some("/api/project/{id}/job"), "/api/project/3/job", None),
            (Some(3), None)
        );
        assert_eq!(
            named_ids(
                Some("/api/testresult"),
                "/api/testresult",
                Some("launchId=7&projectId=2&token=x")
            ),
            (Some(2), Some(7))
        );
        assert_eq!(
            named_ids(
                Some("/api/jobrun/{id}"),
                "/api/jobrun/9",
                Some("launchId=abc")
            ),
            (None, None)
        );
        assert_eq!(named_ids(None, "/nowhere/5", None), (None, None));
    }

    #[test]
    fn a_request_id_is_kept_only_when_plain() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123.x:y_z"));
        assert_eq!(request_id(&h), "abc-123.x:y_z");
        h.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        let id = request_id(&h);
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(request_id(&HeaderMap::new()).len(), 16);
    }
}
