//! `/healthz`, `/readyz` and `/metrics` (outside `/api`; the work is in
//! `observe`). None needs a token, except `/metrics` under
//! `--metrics-require-admin`; none shows a project, a launch or a secret.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::access::Scope;
use crate::error::ServerResult;
use crate::{observe, AppState};

const NO_STORE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-store");

/// The process answers (no database involved).
pub(super) async fn healthz() -> impl IntoResponse {
    ([NO_STORE], "ok")
}

/// 200 when the database answers, its migrations are complete and the blob
/// store takes a file; else 503 naming the failed checks.
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let r = observe::health::readiness(&state.db, &state.observe.blobs_dir).await;
    let status = if r.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [NO_STORE], Json(r)).into_response()
}

/// The Prometheus exposition (text format 0.0.4).
pub(super) async fn metrics(
    State(state): State<AppState>,
    mut parts: Parts,
) -> ServerResult<Response> {
    if state.observe.metrics_require_admin {
        Scope::from_request_parts(&mut parts, &state)
            .await?
            .require_admin()?;
    }
    let body = observe::scrape::render(
        &state.db,
        &state.observe.blobs_dir,
        state.upload_session_timeout,
    )
    .await;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            NO_STORE,
        ],
        body,
    )
        .into_response())
}
