//! Server errors and their HTTP mapping. Client mistakes are 4xx with a JSON
//! body `{message, status, timestamp}` that names what was wrong; only storage
//! failures are 5xx, and their details go to the log, not to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use onelaunch_api::ErrorBody;

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
        ServerError::Conflict(format!(
            "launch {id} is closed: reopen it (POST /api/launch/{id}/reopen, or upload with --reopen-closed-launch) to add results"
        ))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServerError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServerError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::Conflict(_) => StatusCode::CONFLICT,
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
        };
        (status, Json(body)).into_response()
    }
}
