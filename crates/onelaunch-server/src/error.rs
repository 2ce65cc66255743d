//! Server errors and their HTTP mapping. Client mistakes are 4xx with a JSON
//! body `{message, status, timestamp, code}` whose message names what was wrong
//! and whose `code` ([`ErrorCode`]) tells programs what happened; only storage
//! failures are 5xx, and their details go to the log, not to the client.
//!
//! Layers: `db/` returns [`ServerResult`] with `Db`/`Io` errors and the
//! conflicts its constraints detect; `access`, `ingest` and `server_led` add the
//! domain errors (`NotFound`, `LaunchClosed`, `PrerequisiteMissing`, …); the API
//! and the UI only map them (`IntoResponse` here, `UiError` in `ui/`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use onelaunch_api::{ErrorBody, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required: send `Authorization: api-token <token>`")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The launch is closed; nothing may be added until it is reopened.
    ///
    /// The message says "launch is closed": the Allure 3 TestOps plugin reads
    /// that phrase (it knows no codes) to reopen the launch and retry when
    /// `reopenClosedLaunch` is on.
    #[error("the launch is closed (launch {0}): reopen it (POST /api/launch/{0}/reopen, or upload with --reopen-closed-launch) to add results")]
    LaunchClosed(i64),
    /// Jobs cannot run tests yet; one message per missing prerequisite.
    #[error("cannot run: {}", .0.join("; "))]
    PrerequisiteMissing(Vec<String>),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many failed authentication attempts from this client address;
    /// answered with `Retry-After` (seconds).
    #[error("too many failed authentication attempts from this address: retry in {0} s")]
    TooManyRequests(u64),
    /// Stored bytes no longer match their digest (409, never served).
    #[error("{0}")]
    ContentDamaged(String),
    /// Too many uploads in flight (503 with `Retry-After`).
    #[error("{0}")]
    Busy(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
}

pub type ServerResult<T> = Result<T, ServerError>;

/// `Retry-After` of a 503 `busy` answer, in seconds.
const RETRY_AFTER_SECS: &str = "5";

impl ServerError {
    pub fn bad(msg: impl Into<String>) -> Self {
        ServerError::BadRequest(msg.into())
    }
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        ServerError::NotFound(format!("{what} {id} not found"))
    }
    pub fn launch_closed(id: i64) -> Self {
        ServerError::LaunchClosed(id)
    }

    /// The machine-readable code sent next to the message.
    pub fn code(&self) -> ErrorCode {
        match self {
            ServerError::BadRequest(_) => ErrorCode::BadRequest,
            ServerError::Unauthorized => ErrorCode::Unauthorized,
            ServerError::Forbidden(_) => ErrorCode::Forbidden,
            ServerError::NotFound(_) => ErrorCode::NotFound,
            ServerError::Conflict(_) => ErrorCode::Conflict,
            ServerError::LaunchClosed(_) => ErrorCode::LaunchClosed,
            ServerError::PrerequisiteMissing(_) => ErrorCode::PrerequisiteMissing,
            ServerError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ServerError::TooManyRequests(_) => ErrorCode::TooManyRequests,
            ServerError::ContentDamaged(_) => ErrorCode::ContentDamaged,
            ServerError::Busy(_) => ErrorCode::Busy,
            ServerError::Config(_) | ServerError::Db(_) | ServerError::Io(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServerError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServerError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::Conflict(_)
            | ServerError::LaunchClosed(_)
            | ServerError::PrerequisiteMissing(_)
            | ServerError::ContentDamaged(_) => StatusCode::CONFLICT,
            ServerError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServerError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ServerError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServerError::Config(_) | ServerError::Db(_) | ServerError::Io(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let busy = matches!(self, ServerError::Busy(_));
        let retry_after: Option<u64> = match self {
            ServerError::TooManyRequests(secs) => Some(secs),
            ServerError::Busy(_) => RETRY_AFTER_SECS.parse().ok(),
            _ => None,
        };
        let message = if status.is_server_error() && !busy {
            tracing::error!(error = %self, "request failed");
            "internal error; see the server log".to_string()
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            message,
            status: status.as_u16(),
            timestamp: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            code: Some(code),
        };
        let mut res = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_code_and_status() {
        let cases = [
            (ServerError::bad("x"), ErrorCode::BadRequest, 400),
            (ServerError::Unauthorized, ErrorCode::Unauthorized, 401),
            (
                ServerError::Forbidden("x".into()),
                ErrorCode::Forbidden,
                403,
            ),
            (
                ServerError::not_found("launch", 1),
                ErrorCode::NotFound,
                404,
            ),
            (ServerError::launch_closed(7), ErrorCode::LaunchClosed, 409),
            (
                ServerError::PrerequisiteMissing(vec!["a".into(), "b".into()]),
                ErrorCode::PrerequisiteMissing,
                409,
            ),
            (ServerError::Conflict("x".into()), ErrorCode::Conflict, 409),
            (
                ServerError::PayloadTooLarge("x".into()),
                ErrorCode::PayloadTooLarge,
                413,
            ),
            (
                ServerError::TooManyRequests(3),
                ErrorCode::TooManyRequests,
                429,
            ),
            (
                ServerError::ContentDamaged("x".into()),
                ErrorCode::ContentDamaged,
                409,
            ),
            (ServerError::Busy("x".into()), ErrorCode::Busy, 503),
            (ServerError::Config("x".into()), ErrorCode::Internal, 500),
        ];
        for (e, code, status) in cases {
            assert_eq!(e.code(), code, "{e}");
            assert_eq!(e.status().as_u16(), status, "{e}");
        }
    }

    #[test]
    fn busy_answers_say_when_to_retry() {
        let res = ServerError::Busy("full".into()).into_response();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["retry-after"], RETRY_AFTER_SECS);
        let res = ServerError::Config("x".into()).into_response();
        assert!(!res.headers().contains_key("retry-after"));
    }

    #[test]
    fn a_closed_launch_reads_as_closed_to_clients_that_only_know_the_message() {
        // @allurereport/plugin-testops: isLaunchClosedMessage() looks for
        // "launch is closed" or "closed launch" in the lower-cased message.
        let m = ServerError::launch_closed(42).to_string().to_lowercase();
        assert!(m.contains("launch is closed"), "{m}");
        assert!(m.contains("launch 42"), "{m}");
        // Prerequisite problems never read as a closed launch.
        let p = ServerError::PrerequisiteMissing(vec![
            "job 1 has results only in a launch that is open".into(),
        ])
        .to_string()
        .to_lowercase();
        assert!(
            !p.contains("launch is closed") && !p.contains("closed launch"),
            "{p}"
        );
    }
}
