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
    #[error("launch {0} is closed: reopen it (POST /api/launch/{0}/reopen, or upload with --reopen-closed-launch) to add results")]
    LaunchClosed(i64),
    /// Jobs cannot run tests yet; one message per missing prerequisite.
    #[error("cannot run: {}", .0.join("; "))]
    PrerequisiteMissing(Vec<String>),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
}

pub type ServerResult<T> = Result<T, ServerError>;

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
            | ServerError::PrerequisiteMissing(_) => StatusCode::CONFLICT,
            ServerError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
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
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            "internal error; see the server log".to_string()
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            message,
            status: status.as_u16(),
            timestamp: crate::db::now_ms(),
            code: Some(code),
        };
        (status, Json(body)).into_response()
    }
}
