//! The web UI, served by the same binary on the same port: server-rendered
//! pages (maud templates, compiled into the binary), one small stylesheet and
//! one small script (embedded), cookie sessions stored hashed in the database.
//!
//! Every page goes through [`session::Viewer`] (a logged-in browser) and the
//! same project isolation as the API: a project token sees only its project,
//! anything else answers 404. Every state-changing request passes the CSRF
//! guard in [`session::csrf_guard`] before it reaches a handler.

mod api_docs;
mod assets;
mod compare;
mod fmt;
mod gate;
mod globals;
mod job_runs;
mod jobs;
mod launches;
mod layout;
mod manual;
mod plan_run;
mod planned;
mod plans;
mod rerun;
mod results;
mod session;
mod tokens;
mod uploads;

use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::error::ServerError;
use crate::AppState;

/// The UI routes (everything outside `/api`).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/launches") }))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/launches", get(launches::list))
        .route("/launches/compare", get(compare::page))
        .route("/launches/combine", post(compare::combine))
        .route("/launch/{id}", get(launches::page))
        .route("/launch/{id}/events", get(launches::events))
        .route("/launch/{id}/live", get(launches::live))
        .route("/launch/{id}/close", post(launches::close))
        .route("/launch/{id}/reopen", post(launches::reopen))
        .route("/launch/{id}/delete", post(launches::delete))
        .route(
            "/launch/{id}/manual",
            post(manual::record).layer(crate::ingest::limits::multipart_limit()),
        )
        .route("/launch/{id}/manual/assign", post(manual::assign_case))
        .route("/launch/{id}/rerun", post(rerun::rerun))
        .route("/jobrun/{id}", get(job_runs::job_run))
        .route("/result/{id}", get(results::page))
        .route("/attachment/{id}", get(results::attachment))
        .route("/globals/attachment/{id}", get(globals::attachment))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::edit).post(jobs::save))
        .route("/plans", get(plans::list).post(plans::create))
        .route("/plans/new", get(plans::new_form))
        .route("/plans/{id}", get(plans::show))
        .route(
            "/plans/{id}/executors",
            get(plans::executors).post(plans::set_executors),
        )
        .route("/plans/{id}/run", get(plan_run::form).post(plan_run::run))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/api-docs", get(api_docs::page))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/static/{file}", get(assets::serve))
        // A logged-in request's place among its project's requests in
        // flight (`Viewer`), held until its page or event stream is sent.
        .layer(middleware::from_fn(crate::ingest::held::hold_body_shares))
        .layer(middleware::from_fn(session::csrf_guard))
        .layer(middleware::map_response(security_headers))
}

/// Set when the server is shutting down: live pages (server-sent events)
/// end their streams so the graceful shutdown does not wait for browsers.
static SHUTDOWN: std::sync::LazyLock<tokio::sync::watch::Sender<bool>> =
    std::sync::LazyLock::new(|| tokio::sync::watch::channel(false).0);

/// Ends every live stream of this process (called when the server stops).
pub(crate) fn shutting_down() {
    SHUTDOWN.send_replace(true);
}

/// Resolves once the server is shutting down.
pub(crate) async fn shutdown_started() {
    let mut rx = SHUTDOWN.subscribe();
    let _ = rx.wait_for(|stopping| *stopping).await;
}

/// Headers on every UI answer: no framing, no sniffing, only our own
/// scripts/styles, and authenticated pages are never cached.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(
        "default-src 'self'; img-src 'self' data:; style-src 'self'; style-src-attr 'unsafe-inline'; \
         script-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// A failed UI request, answered with an HTML page (or a redirect to the login).
#[derive(Debug)]
pub(crate) enum UiError {
    /// Not logged in: GET requests go to the login page and come back.
    Login {
        next: String,
    },
    NotFound(String),
    BadRequest(String),
    Forbidden(String),
    Conflict(String),
    /// Too many failed logins from this address: retry after so many seconds.
    Throttled(u64),
    Server(ServerError),
}

pub(crate) type UiResult<T> = Result<T, UiError>;

impl UiError {
    pub(crate) fn not_found(what: &str, id: impl std::fmt::Display) -> UiError {
        UiError::NotFound(format!("{what} {id} not found"))
    }
}

impl From<ServerError> for UiError {
    fn from(e: ServerError) -> UiError {
        match e {
            ServerError::NotFound(m) => UiError::NotFound(m),
            ServerError::BadRequest(m) => UiError::BadRequest(m),
            ServerError::Forbidden(m) => UiError::Forbidden(m),
            e @ (ServerError::Conflict(_)
            | ServerError::LaunchClosed(_)
            | ServerError::PrerequisiteMissing(_)
            | ServerError::ContentDamaged(_)) => UiError::Conflict(e.to_string()),
            ServerError::Unauthorized => UiError::Login { next: "/".into() },
            ServerError::TooManyRequests(secs) => UiError::Throttled(secs),
            other => UiError::Server(other),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            UiError::Login { next } => {
                return Redirect::to(&format!("/login?next={}", fmt::url_encode(&next)))
                    .into_response()
            }
            UiError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Cannot do that", m),
            UiError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            UiError::Conflict(m) => (StatusCode::CONFLICT, "Conflict", m),
            UiError::Throttled(secs) => {
                let mut res = (
                    StatusCode::TOO_MANY_REQUESTS,
                    layout::error_page(
                        "Too many attempts",
                        &format!(
                            "Too many failed logins from your address. Try again in {secs} seconds."
                        ),
                    ),
                )
                    .into_response();
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                return res;
            }
            UiError::Server(ServerError::StorageFull(detail)) => {
                tracing::warn!(error = %detail, "storage full: UI request refused with 503");
                let mut res = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    layout::error_page(
                        "Storage full",
                        "The server's storage is full: nothing was saved. Try again once space is freed.",
                    ),
                )
                    .into_response();
                res.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(crate::error::storage_retry_after()),
                );
                return res;
            }
            UiError::Server(ServerError::Busy(m)) => {
                let mut res = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    layout::error_page("Busy", &format!("{m}.")),
                )
                    .into_response();
                res.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(crate::error::BUSY_RETRY_AFTER),
                );
                return res;
            }
            UiError::Server(e) => {
                tracing::error!(error = %e, "UI request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not answer; see its log.".to_string(),
                )
            }
        };
        (status, layout::error_page(title, &message)).into_response()
    }
}

/// Parses a form field of `NAME=value` lines (blank lines and `#` comments are
/// skipped); an error names the field and the line.
pub(crate) fn parse_pairs(field: &str, text: &str) -> UiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| {
            UiError::BadRequest(format!(
                "{field}, line {}: expected NAME=value, got {line:?}",
                i + 1
            ))
        })?;
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_a_503_page_that_says_when_to_retry() {
        let res = UiError::from(ServerError::StorageFull("database: x".into())).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().contains_key(header::RETRY_AFTER));
        let res = UiError::from(ServerError::Config("x".into())).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
